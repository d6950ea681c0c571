// Two small SVG charts for the live page (live.js): requests per replica, and a latency
// histogram. Plain SVG drawn through the DOM: no library, nothing inline for the page's
// Content-Security-Policy to refuse. Colours come from site.css, by class.
"use strict";
window.LiveCharts = (function () {
  const SVG = "http://www.w3.org/2000/svg";
  // Narrow enough that the labels stay legible when the chart shrinks to a phone's width.
  const WIDTH = 420;

  function element(name, attributes, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) {
      node.setAttribute(key, String(value));
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function clear(svg) {
    while (svg.firstChild) {
      svg.removeChild(svg.firstChild);
    }
  }

  // rows: [{label, count}], drawn in the order given: one bar per replica, its count beside it.
  function spread(svg, rows) {
    clear(svg);
    const rowHeight = 28;
    const labelWidth = 110;
    const height = Math.max(1, rows.length) * rowHeight + 8;
    svg.setAttribute("viewBox", `0 0 ${WIDTH} ${height}`);
    const most = Math.max(1, ...rows.map((row) => row.count));
    rows.forEach((row, index) => {
      const y = 4 + index * rowHeight;
      const width = Math.max(2, ((WIDTH - labelWidth - 70) * row.count) / most);
      const group = element("g", { class: "bar", "data-replica": row.label });
      group.appendChild(element("text", { x: 0, y: y + 18, class: "label" }, row.label));
      group.appendChild(element("rect", { x: labelWidth, y: y + 4, width, height: rowHeight - 8, rx: 3 }));
      group.appendChild(element("text", { x: labelWidth + width + 6, y: y + 18, class: "value" }, String(row.count)));
      svg.appendChild(group);
    });
  }

  // buckets: [{upper, count}] in order; marks: [{value, label}] drawn as vertical lines.
  function latency(svg, buckets, marks, formatMs) {
    clear(svg);
    const height = 200;
    // Room above the bars for one label line per mark.
    const top = 34;
    const bottom = 36;
    const plotHeight = height - top - bottom;
    svg.setAttribute("viewBox", `0 0 ${WIDTH} ${height}`);
    if (buckets.length === 0) {
      svg.appendChild(element("text", { x: 0, y: 100, class: "label" }, "No answered requests yet."));
      return;
    }
    const step = WIDTH / buckets.length;
    const most = Math.max(1, ...buckets.map((bucket) => bucket.count));
    // About eight axis labels whatever the spread, each at its bucket's right edge (its upper bound).
    const labelEvery = Math.max(1, Math.ceil(buckets.length / 8));
    buckets.forEach((bucket, index) => {
      const barHeight = (plotHeight * bucket.count) / most;
      const x = index * step;
      svg.appendChild(
        element("rect", {
          x: x + 1,
          y: top + plotHeight - barHeight,
          width: Math.max(1, step - 2),
          height: barHeight,
          class: "bucket",
          "data-count": bucket.count,
        }),
      );
      if ((index + 1) % labelEvery === 0) {
        svg.appendChild(element("text", { x: x + step, y: height - 18, class: "axis", "text-anchor": "end" }, formatMs(bucket.upper)));
      }
    });
    svg.appendChild(element("text", { x: 0, y: height - 2, class: "axis" }, "each bucket: up to this latency"));
    // A mark sits where its value falls inside its bucket, on the same logarithmic scale.
    const lowest = buckets[0].upper / Math.SQRT2;
    const scale = (value) => (Math.log(value / lowest) / Math.log(Math.SQRT2)) * step;
    marks.forEach((mark, index) => {
      const x = Math.min(WIDTH - 1, Math.max(1, scale(mark.value)));
      svg.appendChild(element("line", { x1: x, x2: x, y1: top - 4, y2: top + plotHeight, class: "mark" }));
      const anchor = x > WIDTH - 120 ? "end" : "start";
      const labelX = anchor === "end" ? x - 4 : x + 4;
      svg.appendChild(
        element("text", { x: labelX, y: 12 + index * 14, class: "mark-label", "text-anchor": anchor }, mark.label),
      );
    });
  }

  return { spread, latency };
})();
