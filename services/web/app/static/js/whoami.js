// Asks /api/whoami and shows which replica answered; no external resources.
"use strict";
(function () {
  const answer = document.getElementById("answer");
  async function ask() {
    try {
      const response = await fetch("/api/whoami", { headers: { Accept: "application/json" } });
      const body = await response.json();
      answer.textContent = JSON.stringify(body, null, 2);
    } catch (error) {
      answer.textContent = "request failed: " + error;
    }
  }
  document.getElementById("ask").addEventListener("click", ask);
  ask();
})();
