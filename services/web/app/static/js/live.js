// The live page: watches which replicas answer, fires requests at the stack's probe
// endpoints, and shows how they spread, how long they took and how many failed or were
// rate limited. Everything goes to this page's own origin (nginx), nothing elsewhere.
"use strict";
(function () {
  const byId = (id) => document.getElementById(id);
  // A replica counts as answering while it has answered within this window. The page asks
  // a few times a second, so a replica that is gone leaves the count within a few seconds.
  const WINDOW_MS = 8000;
  const HEARTBEAT_MS = 1000;
  // /api/settings names the replica that answered, and what it runs with: several a beat, so
  // that nginx's rotation brings every replica's answer; one while a run is in flight.
  const ASKS_PER_HEARTBEAT = 4;
  // Latency buckets: each a factor of sqrt(2) above the one before, from a quarter millisecond.
  const FIRST_BUCKET_MS = 0.25;

  const seen = new Map(); // hostname -> when it last answered (performance.now())
  const reported = new Map(); // hostname -> its /api/settings answer
  let latestAnswer = 0;
  let probesOff = false;
  let run = null; // the run in flight
  let lastRun = null; // the last one finished, shown until the next starts
  let runs = 0;
  let renderPending = false;

  // Each request the page sends carries an id saying whose it is (nginx keeps a well-formed
  // X-Request-ID, and both access logs show it): live-<page>-<run>-<number>.
  const pageId = Math.random().toString(36).slice(2, 10);
  document.body.dataset.pageId = pageId;
  let sequence = 0;

  async function call(path, signal, runNumber = 0) {
    const started = performance.now();
    sequence += 1;
    const headers = { Accept: "application/json", "X-Request-ID": `live-${pageId}-${runNumber}-${sequence}` };
    try {
      const response = await fetch(path, { cache: "no-store", headers, signal });
      const text = await response.text();
      let body = null;
      if ((response.headers.get("Content-Type") || "").includes("json")) {
        try {
          body = JSON.parse(text);
        } catch (error) {
          body = null;
        }
      }
      return { status: response.status, body, ms: performance.now() - started };
    } catch (error) {
      if (error.name === "AbortError") {
        return { aborted: true };
      }
      return { status: 0, body: null, ms: performance.now() - started };
    }
  }

  function observe(result) {
    if (result.status >= 200 && result.status < 300 && result.body && typeof result.body.hostname === "string") {
      const now = performance.now();
      seen.set(result.body.hostname, now);
      latestAnswer = now;
    }
  }

  // The replicas answering now: those seen within the window before the latest answer, so
  // a spell of 429s or a paused tab empties nothing.
  function answering() {
    return [...seen.entries()]
      .filter(([, when]) => when >= latestAnswer - WINDOW_MS)
      .map(([hostname]) => hostname)
      .sort();
  }

  async function heartbeat() {
    if (!probesOff && !document.hidden) {
      const asks = Array.from({ length: run ? 1 : ASKS_PER_HEARTBEAT }, () => call("/api/settings"));
      const results = await Promise.all(asks);
      if (results[0].status === 404 && seen.size === 0) {
        showProbesOff();
        return;
      }
      for (const result of results) {
        observe(result);
        if (result.status === 200 && result.body && result.body.hostname) {
          reported.set(result.body.hostname, result.body);
          applyLimits(result.body.stack || {});
        }
      }
      scheduleRender();
    }
    window.setTimeout(heartbeat, HEARTBEAT_MS);
  }

  function showProbesOff() {
    probesOff = true;
    byId("probes-off").hidden = false;
    byId("fire-fields").disabled = true;
    byId("replica-count").textContent = "–";
    byId("replica-count-label").textContent = "replicas: not reported, the probes are off";
    byId("settings").textContent = "Not reported: the probes are off.";
    byId("run-status").textContent = "Firing requests needs the probe endpoints.";
  }

  // The form: which endpoint, how many requests, how many at once. The probes' own bounds
  // (APP_SLEEP_MAX_MS, APP_COMPUTE_MAX_ROUNDS) replace the page's once a replica reports them.
  const limits = {
    "sleep-ms": (max) => `Sleep must be a whole number of milliseconds from 0 to ${max}.`,
    "compute-rounds": (max) => `Compute rounds must be a whole number from 0 to ${max}.`,
    count: (max) => `Requests must be a whole number from 1 to ${max}.`,
    concurrency: (max) => `Concurrency must be a whole number from 1 to ${max}.`,
  };

  function applyLimits(stack) {
    for (const [id, value] of [
      ["sleep-ms", stack.sleep_max_ms],
      ["compute-rounds", stack.compute_max_rounds],
    ]) {
      if (Number.isInteger(value) && value >= 0) {
        byId(id).max = String(value);
      }
    }
  }

  function endpointChosen() {
    const endpoint = byId("endpoint").value;
    byId("sleep-ms").disabled = endpoint !== "sleep";
    byId("compute-rounds").disabled = endpoint !== "compute";
  }

  function readForm() {
    const error = byId("form-error");
    for (const id of Object.keys(limits)) {
      const input = byId(id);
      input.removeAttribute("aria-invalid");
      if (!input.disabled && (!input.checkValidity() || input.value.trim() === "")) {
        input.setAttribute("aria-invalid", "true");
        error.textContent = limits[id](input.max);
        error.hidden = false;
        input.focus();
        return null;
      }
    }
    error.hidden = true;
    const endpoint = byId("endpoint").value;
    const paths = {
      whoami: () => "/api/whoami",
      sleep: () => `/api/sleep/${Number(byId("sleep-ms").value)}`,
      compute: () => `/api/compute/${Number(byId("compute-rounds").value)}`,
    };
    return { path: paths[endpoint](), total: Number(byId("count").value), concurrency: Number(byId("concurrency").value) };
  }

  async function fire(event) {
    event.preventDefault();
    if (run || probesOff) {
      return;
    }
    const plan = readForm();
    if (!plan) {
      return;
    }
    runs += 1;
    run = {
      ...plan,
      number: runs,
      sent: 0,
      returned: 0,
      outcomes: { ok: 0, limited: 0, error: 0, network: 0 },
      errors: new Map(), // status -> count
      replicas: new Map(), // hostname -> {count, workers: Map(pid -> count)}
      latencies: [],
      started: performance.now(),
      finished: null,
      controller: new AbortController(),
    };
    const current = run;
    byId("stop").disabled = false;
    // The focus moves with the control that can act now, never to the page's start.
    const fromFire = document.activeElement === byId("fire");
    byId("fire").disabled = true;
    if (fromFire) {
      byId("stop").focus();
    }
    announce(`Running ${plan.total} requests to ${plan.path}, ${plan.concurrency} at a time.`, "running");
    const sender = async () => {
      while (current.sent < current.total && !current.controller.signal.aborted) {
        current.sent += 1;
        const result = await call(current.path, current.controller.signal, current.number);
        if (!result.aborted) {
          record(current, result);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(plan.concurrency, plan.total) }, sender));
    current.finished = performance.now();
    lastRun = current;
    run = null;
    byId("fire").disabled = false;
    const focusWasOnStop = document.activeElement === byId("stop") || document.activeElement === document.body;
    byId("stop").disabled = true;
    if (focusWasOnStop) {
      byId("fire").focus();
    }
    const seconds = (current.finished - current.started) / 1000;
    const stopped = current.returned < current.total;
    const rate = Math.round(current.returned / Math.max(seconds, 0.001));
    announce(
      `${stopped ? "Stopped after" : "Done:"} ${current.returned} of ${current.total} requests to ${current.path} ` +
        `in ${seconds.toFixed(2)} s (${rate} per second): ${current.outcomes.ok} answered, ` +
        `${current.outcomes.limited} rate limited, ${current.outcomes.error + current.outcomes.network} failed.`,
      stopped ? "stopped" : "done",
    );
    scheduleRender();
  }

  // The run's start and end, for screen readers too (role=status); its progress is not live.
  function announce(text, state) {
    const line = byId("run-status");
    line.dataset.state = state;
    line.textContent = text;
  }

  function record(current, result) {
    current.returned += 1;
    observe(result);
    if (result.status >= 200 && result.status < 300) {
      current.outcomes.ok += 1;
      current.latencies.push(result.ms);
      const hostname = (result.body && result.body.hostname) || "(not reported)";
      const replica = current.replicas.get(hostname) || { count: 0, workers: new Map() };
      replica.count += 1;
      const pid = result.body && result.body.pid;
      replica.workers.set(pid, (replica.workers.get(pid) || 0) + 1);
      current.replicas.set(hostname, replica);
    } else if (result.status === 429) {
      current.outcomes.limited += 1;
    } else if (result.status === 0) {
      current.outcomes.network += 1;
    } else {
      current.outcomes.error += 1;
      current.errors.set(result.status, (current.errors.get(result.status) || 0) + 1);
    }
    scheduleRender();
  }

  function stop() {
    if (run) {
      run.controller.abort();
    }
  }

  // Drawing, at most once a frame however fast the answers come.
  function scheduleRender() {
    if (!renderPending) {
      renderPending = true;
      window.requestAnimationFrame(render);
    }
  }

  function render() {
    renderPending = false;
    if (!probesOff) {
      renderReplicas();
      renderSettings();
    }
    const shown = run || lastRun;
    if (shown) {
      renderRun(shown);
    }
  }

  // Text is written only when it changes, so live regions announce changes, not frames.
  function setText(id, text) {
    const node = byId(id);
    if (node.textContent !== text) {
      node.textContent = text;
    }
  }

  function renderReplicas() {
    if (seen.size === 0) {
      return;
    }
    if (performance.now() - latestAnswer > WINDOW_MS) {
      setText("replica-count", "0");
      setText("replica-count-label", "replicas answering: none has answered for a while");
      return;
    }
    const hosts = answering();
    setText("replica-count", String(hosts.length));
    setText("replica-count-label", hosts.length === 1 ? "replica answering" : "replicas answering");
  }

  function formatMs(ms) {
    if (ms < 10) {
      return `${ms.toFixed(1)} ms`;
    }
    if (ms < 1000) {
      return `${Math.round(ms)} ms`;
    }
    return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  }

  function percentile(sorted, fraction) {
    return sorted[Math.max(0, Math.ceil(fraction * sorted.length) - 1)];
  }

  function renderRun(shown) {
    for (const [name, count] of Object.entries(shown.outcomes)) {
      document.querySelector(`[data-outcome="${name}"]`).textContent = String(count);
    }
    const kinds = byId("error-kinds");
    kinds.replaceChildren(
      ...[...shown.errors.entries()].sort().map(([status, count]) => {
        const item = document.createElement("li");
        item.textContent = `HTTP ${status}: ${count}`;
        return item;
      }),
    );

    setText("run-progress", shown.finished ? "" : `${shown.returned} of ${shown.total} returned so far.`);

    const rows = [...shown.replicas.entries()].sort().map(([label, replica]) => ({ label, count: replica.count }));
    window.LiveCharts.spread(byId("spread-chart"), rows);
    byId("spread-summary").textContent =
      rows.length === 0
        ? "No answered requests in this run."
        : `${shown.outcomes.ok} answered requests over ${rows.length} ${rows.length === 1 ? "replica" : "replicas"}: ` +
          rows.map((row) => `${row.label} ${row.count}`).join(", ") + ".";
    byId("spread-table").tBodies[0].replaceChildren(
      ...[...shown.replicas.entries()].sort().map(([label, replica]) => {
        const tr = document.createElement("tr");
        const workers = [...replica.workers.entries()].map(([pid, count]) => `${pid}: ${count}`).join(", ");
        for (const text of [label, String(replica.count), workers]) {
          const cell = document.createElement("td");
          cell.textContent = text;
          tr.appendChild(cell);
        }
        return tr;
      }),
    );

    const sorted = [...shown.latencies].sort((a, b) => a - b);
    if (sorted.length === 0) {
      setText("p50", "–");
      setText("p99", "–");
      window.LiveCharts.latency(byId("latency-chart"), [], [], formatMs);
      return;
    }
    const p50 = percentile(sorted, 0.5);
    const p99 = percentile(sorted, 0.99);
    setText("p50", formatMs(p50));
    setText("p99", formatMs(p99));
    const index = (ms) => Math.max(0, Math.ceil(Math.log(ms / FIRST_BUCKET_MS) / Math.log(Math.SQRT2)));
    const first = Math.max(0, index(sorted[0]) - 1);
    const last = index(sorted[sorted.length - 1]) + 1;
    const counts = new Array(last - first + 1).fill(0);
    sorted.forEach((ms) => {
      counts[index(ms) - first] += 1;
    });
    const buckets = counts.map((count, offset) => ({ upper: FIRST_BUCKET_MS * Math.SQRT2 ** (first + offset), count }));
    window.LiveCharts.latency(
      byId("latency-chart"),
      buckets,
      [
        { value: p50, label: `p50 ${formatMs(p50)}` },
        { value: p99, label: `p99 ${formatMs(p99)}` },
      ],
      formatMs,
    );
  }

  // Settings: one column per group of replicas that report the same.
  function renderSettings() {
    const current = answering();
    const hosts = current.filter((hostname) => reported.has(hostname));
    if (hosts.length === 0) {
      return;
    }
    const groups = new Map(); // the settings as JSON -> hostnames
    for (const hostname of hosts) {
      const { worker_class, version, server, stack } = reported.get(hostname);
      const key = JSON.stringify({ worker_class, version, server, stack });
      groups.set(key, [...(groups.get(key) || []), hostname]);
    }
    const missing = current.length - hosts.length;
    const shown = JSON.stringify([...groups.entries(), missing]);
    if (byId("settings").dataset.shown === shown) {
      return;
    }
    byId("settings").dataset.shown = shown;
    const columns = [...groups.entries()].map(([key, members]) => ({ members, values: flatten(JSON.parse(key)) }));
    const names = [...new Set(columns.flatMap((column) => Object.keys(column.values)))];
    const table = document.createElement("table");
    table.className = "data";
    table.id = "settings-table";
    const agreeing = hosts.length === 1 ? "The one replica that reported:" : `All ${hosts.length} replicas that reported report the same.`;
    const differing = `${columns.length} groups of replicas report different settings.`;
    const waiting = missing > 0 ? ` ${missing} answering ${missing === 1 ? "replica has" : "replicas have"} not reported yet.` : "";
    table.createCaption().textContent = (columns.length === 1 ? agreeing : differing) + waiting;
    const head = table.createTHead().insertRow();
    head.appendChild(headerCell("Setting", "col"));
    columns.forEach((column) => head.appendChild(headerCell(column.members.join(", "), "col")));
    const body = table.createTBody();
    names.forEach((name) => {
      const row = body.insertRow();
      row.appendChild(headerCell(name, "row"));
      columns.forEach((column) => {
        row.insertCell().textContent = name in column.values ? String(column.values[name]) : "–";
      });
    });
    byId("settings").replaceChildren(table);
  }

  function headerCell(text, scope) {
    const cell = document.createElement("th");
    cell.scope = scope;
    cell.textContent = text;
    return cell;
  }

  function flatten(settings) {
    const values = { worker_class: settings.worker_class, version: settings.version };
    for (const [name, value] of Object.entries(settings.server || {})) {
      values[`gunicorn ${name}`] = value;
    }
    for (const [name, value] of Object.entries(settings.stack || {})) {
      values[`stack ${name}`] = value;
    }
    return values;
  }

  byId("endpoint").addEventListener("change", endpointChosen);
  byId("fire-form").addEventListener("submit", fire);
  byId("stop").addEventListener("click", stop);
  endpointChosen();
  heartbeat();
})();
