// portside console: actions through the admin API, live queue counts and the outbox tail.
// No inline script anywhere (the Content-Security-Policy forbids it); text goes in with
// textContent only, never as HTML.
"use strict";

const HEADER = "X-Portside-Console";

function notice(text, failed) {
  const box = document.getElementById("notice");
  if (!box) return;
  box.textContent = text;
  box.hidden = false;
  box.className = failed ? "notice problem" : "notice";
}

async function act(button) {
  const question = button.dataset.confirm;
  if (question && !window.confirm(question)) return;
  let url = button.dataset.action;
  const daysFrom = button.dataset.daysFrom;
  if (daysFrom) {
    const days = document.getElementById(daysFrom).value;
    url += "?olderThanDays=" + encodeURIComponent(days);
  }
  button.disabled = true;
  try {
    const response = await fetch(url, {
      method: button.dataset.method || "POST",
      credentials: "same-origin",
      headers: { [HEADER]: "1", Accept: "application/json" },
    });
    let body = {};
    try { body = await response.json(); } catch (error) { body = {}; }
    if (response.status === 401 || response.status === 403) {
      notice("Sign in with the admin token to do this: " + (body.detail || response.statusText), true);
      return;
    }
    if (!response.ok) {
      notice(body.detail || response.statusText, true);
      return;
    }
    if (button.dataset.then) {
      window.location.assign(button.dataset.then);
    } else {
      window.location.reload();
    }
  } finally {
    button.disabled = false;
  }
}

function bindActions() {
  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => act(button));
  }
}

const SVG = "http://www.w3.org/2000/svg";

function drawChart(cell, minutes) {
  const svg = cell.querySelector("svg");
  if (!svg) return;
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const top = Math.max(1, ...minutes.map((m) => m.completed + m.failed));
  minutes.forEach((minute, index) => {
    const done = Math.round((minute.completed * 24) / top);
    const failed = Math.round((minute.failed * 24) / top);
    for (const [cls, y, h] of [["done", 24 - done, done], ["failed", 24 - done - failed, failed]]) {
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("class", cls);
      rect.setAttribute("x", String(index * 6));
      rect.setAttribute("y", String(y));
      rect.setAttribute("width", "5");
      rect.setAttribute("height", String(h));
      svg.appendChild(rect);
    }
  });
}

function setField(row, name, text) {
  const cell = row.querySelector('[data-field="' + name + '"]');
  if (cell) cell.textContent = text;
}

function updateQueues(queues) {
  for (const queue of queues) {
    const row = document.querySelector('tr[data-queue="' + CSS.escape(queue.name) + '"]');
    if (!row) continue;
    const counts = queue.counts;
    setField(row, "waiting", String(counts.waiting + counts.paused));
    setField(row, "active", String(counts.active));
    setField(row, "delayed", String(counts.delayed));
    setField(row, "completed", String(counts.completed));
    setField(row, "failed", String(counts.failed));
    setField(row, "workers", String(queue.workers.length));
    setField(row, "failure-rate", (queue.failureRate * 100).toFixed(1) + " %");
    const completed = queue.minutes.reduce((sum, m) => sum + m.completed, 0);
    const failed = queue.minutes.reduce((sum, m) => sum + m.failed, 0);
    setField(row, "throughput", completed + " ok / " + failed + " failed");
    const flag = row.querySelector('[data-field="paused"]');
    if (flag) {
      const badge = document.createElement("span");
      badge.className = "badge " + (queue.paused ? "paused" : "running");
      badge.textContent = queue.paused ? "paused" : "running";
      flag.replaceChildren(badge);
    }
    const chart = row.querySelector('[data-field="chart"]');
    if (chart) drawChart(chart, queue.minutes);
  }
}

function followQueues() {
  const table = document.querySelector("[data-live-queues]");
  if (!table) return;
  const source = new EventSource(table.dataset.liveQueues);
  source.addEventListener("queues", (event) => updateQueues(JSON.parse(event.data)));
}

function followStream() {
  const table = document.querySelector("[data-tail]");
  if (!table) return;
  const body = table.querySelector("tbody");
  const source = new EventSource(table.dataset.tail);
  source.onmessage = (event) => {
    const data = JSON.parse(event.data);
    const row = document.createElement("tr");
    row.dataset.seq = String(data.seq);
    for (const text of [String(data.seq), data.type, data.createdAt, JSON.stringify(data.payload)]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.appendChild(cell);
    }
    body.insertBefore(row, body.firstChild);
    while (body.children.length > 200) body.removeChild(body.lastChild);
    const last = document.getElementById("last-seq");
    if (last && Number(last.textContent) < data.seq) last.textContent = String(data.seq);
  };
}

document.addEventListener("DOMContentLoaded", () => {
  bindActions();
  followQueues();
  followStream();
});
