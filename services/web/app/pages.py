"""The HTML front page: a live view of the stack, drawn by static/js/live.js."""

import os
import socket

from flask import Blueprint, render_template

blueprint = Blueprint("pages", __name__)


@blueprint.get("/")
def index():
    return render_template("index.html", hostname=socket.gethostname(), pid=os.getpid())
