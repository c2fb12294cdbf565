// Pilotdial console: the live panel and the agent screen's event stream.
// Reads server-sent events with the browser's own EventSource (no library); the stream is the
// API's, authenticated by the console's session cookie. Numbers use the page's language.
(function () {
  "use strict";
  var lang = document.documentElement.lang || "zh-Hans";
  var zone = document.documentElement.getAttribute("data-zone") || undefined;
  var whole = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });
  var oneDigit = new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  var pct = new Intl.NumberFormat(lang, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });

  function pick(data, path) {
    return path.split(".").reduce(function (v, k) { return v == null ? v : v[k]; }, data);
  }
  function format(value, fmt) {
    if (value === null || value === undefined || value === "") return "—";
    if (typeof value !== "number") return String(value);
    if (fmt === "%") return pct.format(value);
    if (fmt === "1") return oneDigit.format(value);
    return whole.format(value);
  }
  function mmss(seconds) {
    var s = Math.max(0, Math.floor(seconds || 0));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function renderLive(panel, data) {
    panel.querySelectorAll("[data-live]").forEach(function (el) {
      var key = el.getAttribute("data-live");
      var value = pick(data, key);
      el.textContent = key === "at" ? new Date(value).toLocaleTimeString(lang, { timeZone: zone }) : format(value, el.getAttribute("data-fmt"));
    });
    var cap = parseFloat(panel.getAttribute("data-cap")) || 0.03;
    var scale = 540 / Math.max(cap * 2, 0.001);  // the bar's full width is twice the cap
    var rate = pick(data, "abandon.rate") || 0;
    var bar = panel.querySelector("[data-live-bar]");
    if (bar) {
      bar.setAttribute("width", String(Math.min(540, rate * scale)));
      bar.setAttribute("fill", rate > cap ? "#b91c1c" : "#2563eb");
    }
    var line = panel.querySelector("[data-cap-line]");
    if (line) { line.setAttribute("x1", String(cap * scale)); line.setAttribute("x2", String(cap * scale)); }
    var body = panel.querySelector("[data-live-agents]");
    var agents = pick(data, "agents.list");
    if (body && Array.isArray(agents)) {
      var labels = JSON.parse(body.getAttribute("data-state-labels") || "{}");
      var rows = document.createDocumentFragment();
      agents.forEach(function (a) {
        var tr = document.createElement("tr");
        [a.code, a.name].forEach(function (t) { var td = document.createElement("td"); td.textContent = t == null ? "" : t; tr.appendChild(td); });
        var td = document.createElement("td"); var badge = document.createElement("span");
        badge.className = "badge a-" + a.state; badge.textContent = labels[a.state] || a.state; td.appendChild(badge); tr.appendChild(td);
        var time = document.createElement("td"); time.className = "num"; time.textContent = mmss(a.seconds_in_state); tr.appendChild(time);
        rows.appendChild(tr);
      });
      body.replaceChildren(rows);
    }
    var dot = panel.querySelector("[data-live-state]");
    if (dot) dot.setAttribute("data-live-state", "on");
    panel.setAttribute("data-updated", String(Date.now()));
  }

  function startLive(panel) {
    if (!window.EventSource) return;
    var source = new EventSource(panel.getAttribute("data-live-url"));
    source.addEventListener("live", function (event) { renderLive(panel, JSON.parse(event.data)); });
    source.onerror = function () {
      var dot = panel.querySelector("[data-live-state]");
      if (dot) dot.setAttribute("data-live-state", "off");
    };
  }

  function startAgent(phone) {
    if (!window.EventSource) return;
    var source = new EventSource(phone.getAttribute("data-agent-stream"));
    ["call_connected", "preview_offered", "call_ended", "state_changed"].forEach(function (kind) {
      source.addEventListener(kind, function () {
        if (window.htmx) window.htmx.trigger(phone, "agent-event");
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("live");
    if (panel) startLive(panel);
    var phone = document.querySelector("[data-agent-stream]");
    if (phone) startAgent(phone);
  });
  window.pilotdialRenderLive = renderLive;
})();
