// The explorer's live part: new blocks from the /events websocket update the height,
// the latest-blocks table and two charts. Chain data only ever goes in as textContent.
// Shortened ids ([data-full]) are copied whole, and [data-copy] values get a copy button.
"use strict";
(function () {
  const WINDOW_MS = 5 * 60 * 1000;
  const BUCKET_MS = 10 * 1000;
  const MAX_ROWS = 20;
  const source = document.getElementById("recent-blocks");
  const blocks = source ? JSON.parse(source.textContent) : [];

  function text(tag, value, className) {
    const node = document.createElement(tag);
    node.textContent = value;
    if (className) node.className = className;
    return node;
  }

  function shortHash(value) {
    const node = text("span", value.length > 17 ? value.slice(0, 10) + "…" + value.slice(-6) : value, "hash");
    node.title = value;
    node.dataset.full = value;
    return node;
  }

  function formatTime(ms) {
    return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function addRow(event) {
    const body = document.querySelector("#latest-blocks tbody");
    if (!body) return;
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    const row = document.createElement("tr");
    row.className = "fresh";
    const cell = document.createElement("td");
    const link = text("a", String(event.height));
    link.href = "/explorer/blocks/" + encodeURIComponent(event.height);
    cell.appendChild(link);
    row.appendChild(cell);
    row.appendChild(text("td", formatTime(event.time_ms), "when"));
    const proposer = text("td", event.proposer_name || "");
    if (!event.proposer_name) { proposer.className = "mono"; proposer.appendChild(shortHash(event.proposer)); }
    row.appendChild(proposer);
    row.appendChild(text("td", String(event.tx_count)));
    row.appendChild(text("td", event.round === null ? "—" : String(event.round)));
    const hash = text("td", "", "mono");
    hash.appendChild(shortHash(event.hash));
    row.appendChild(hash);
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  }

  function drawSeries(canvas, points, color, kind) {
    if (!canvas) return;
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height, left = 40, bottom = 20;
    ctx.clearRect(0, 0, w, h);
    const top = Math.max(1, ...points.map((p) => p.y));
    ctx.strokeStyle = "#d8dee4";
    ctx.fillStyle = "#5b6b7a";
    ctx.font = "11px sans-serif";
    for (let i = 0; i <= 4; i++) {
      const y = (h - bottom) - (i / 4) * (h - bottom - 10);
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(w, y); ctx.stroke();
      ctx.fillText((top * i / 4).toFixed(top < 4 ? 1 : 0), 2, y + 4);
    }
    ctx.fillText("-5 min", left, h - 4);
    ctx.fillText("now", w - 24, h - 4);
    if (!points.length) return;
    const x = (t) => left + (w - left) * (t / WINDOW_MS);
    const y = (v) => (h - bottom) - (v / top) * (h - bottom - 10);
    ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 2;
    if (kind === "line") {
      ctx.beginPath();
      points.forEach((p, i) => (i ? ctx.lineTo(x(p.x), y(p.y)) : ctx.moveTo(x(p.x), y(p.y))));
      ctx.stroke();
    } else {
      points.forEach((p) => ctx.fillRect(x(p.x) - 2, y(p.y) - 2, 4, 4));
    }
  }

  function draw() {
    const newest = blocks.length ? blocks[blocks.length - 1].time_ms : 0;
    const end = Math.max(Date.now(), newest);
    const start = end - WINDOW_MS;
    const buckets = new Array(WINDOW_MS / BUCKET_MS).fill(0);
    const intervals = [];
    blocks.forEach((b, i) => {
      if (b.time_ms < start) return;
      const slot = Math.min(buckets.length - 1, Math.floor((b.time_ms - start) / BUCKET_MS));
      buckets[slot] += b.tx_count;
      if (i > 0) intervals.push({ x: b.time_ms - start, y: (b.time_ms - blocks[i - 1].time_ms) / 1000 });
    });
    const rates = buckets.map((count, i) => ({ x: (i + 0.5) * BUCKET_MS, y: count / (BUCKET_MS / 1000) }));
    drawSeries(document.getElementById("chart-tps"), rates, "#0b6e8a", "line");
    drawSeries(document.getElementById("chart-interval"), intervals, "#c05621", "dots");
  }

  function onBlock(event) {
    blocks.push({ height: event.height, time_ms: event.time_ms, tx_count: event.tx_count });
    while (blocks.length && blocks[0].time_ms < event.time_ms - 2 * WINDOW_MS) blocks.shift();
    for (const id of ["chain-height", "stat-height"]) {
      const node = document.getElementById(id);
      if (node) node.textContent = String(event.height);
    }
    const time = document.getElementById("stat-time");
    if (time) time.textContent = formatTime(event.time_ms);
    addRow(event);
    draw();
  }

  function connect(delay) {
    const state = document.getElementById("live-state");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + location.host + "/events?types=block");
    socket.onopen = () => { if (state) { state.textContent = "live"; state.classList.add("on"); } delay = 1000; };
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "block") onBlock(event);
    };
    socket.onclose = () => {
      if (state) { state.textContent = "offline"; state.classList.remove("on"); }
      setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
    };
  }

  // Copying a selection puts the whole value of every shortened id in it on the clipboard.
  document.addEventListener("copy", (event) => {
    const selection = document.getSelection();
    if (!selection || !selection.rangeCount || !event.clipboardData) return;
    const box = document.createElement("div");
    for (let i = 0; i < selection.rangeCount; i++) box.appendChild(selection.getRangeAt(i).cloneContents());
    const shortened = box.querySelectorAll("[data-full]");
    if (!shortened.length) return;
    shortened.forEach((node) => { node.textContent = node.dataset.full; });
    event.clipboardData.setData("text/plain", box.textContent);
    event.preventDefault();
  });

  function addCopyButtons() {
    if (!navigator.clipboard) return;
    document.querySelectorAll("[data-copy]").forEach((node) => {
      const button = text("button", "copy", "copy");
      button.type = "button";
      button.title = "copy the whole value";
      button.addEventListener("click", () => {
        navigator.clipboard.writeText(node.dataset.full || node.textContent.trim()).then(
          () => { button.textContent = "copied"; },
          () => { button.textContent = "copy failed"; });
      });
      node.after(button);
    });
  }

  addCopyButtons();
  draw();
  setInterval(draw, 5000);
  connect(1000);
})();
