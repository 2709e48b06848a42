// A training's page, live: progress, status and log tail from server-sent events; the chart and the benchmark
// reloaded (htmx) when an epoch ends and when the training ends. No page reload.
(function () {
  const live = document.getElementById("live");
  if (!live || live.dataset.ended === "true") return;
  const log = document.getElementById("log");
  let epoch = Number(document.getElementById("epoch").textContent);
  const events = new EventSource(live.dataset.events);
  const reloadResult = () => htmx.ajax("GET", live.dataset.result, { target: "#result", swap: "innerHTML" });
  events.addEventListener("progress", (e) => {
    const s = JSON.parse(e.data);
    const status = document.getElementById("status");
    status.textContent = s.status;
    status.dataset.status = s.status;
    const why = document.getElementById("why");
    why.textContent = s.error || s.reason || "";
    why.className = s.error ? "error" : "meta";
    document.getElementById("progress").value = s.percent;
    document.getElementById("percent").textContent = s.percent;
    document.getElementById("epoch").textContent = s.epoch;
    document.getElementById("epochs").textContent = s.epochs;
    if (s.epoch !== epoch) { epoch = s.epoch; reloadResult(); }
  });
  events.addEventListener("log", (e) => {
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent += e.data + "\n";
    if (atBottom) log.scrollTop = log.scrollHeight;
  });
  events.addEventListener("end", () => {
    events.close();
    live.dataset.ended = "true";
    reloadResult();
  });
})();

// A fragment kept live by server-sent events: each `update` replaces its HTML, `end` closes the stream.
document.querySelectorAll("[data-live]").forEach((element) => {
  const events = new EventSource(element.dataset.live);
  events.addEventListener("update", (e) => { element.innerHTML = e.data; htmx.process(element); });
  events.addEventListener("end", () => events.close());
});
