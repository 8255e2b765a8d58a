"use strict";
(function () {
  const config = JSON.parse(document.getElementById("mos-config").textContent);
  const $ = (id) => document.getElementById(id);
  const now = () => new Date().toISOString();
  let listener = null, playlist = [], state = null, position = 0;

  function storageKey() { return "cause-pl-mos:" + config.kit + ":" + listener; }
  function save() {
    try { localStorage.setItem(storageKey(), JSON.stringify(state)); } catch (e) { /* private mode: keep going */ }
  }
  function load() {
    try { return JSON.parse(localStorage.getItem(storageKey()) || "null"); } catch (e) { return null; }
  }

  function buildScale() {
    const scale = $("scale");
    Object.keys(config.scale).map(Number).sort((a, b) => b - a).forEach((value) => {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio"; input.name = "rating"; input.value = String(value); input.id = "rating-" + value;
      input.addEventListener("change", () => rate(value));
      label.appendChild(input);
      label.appendChild(document.createTextNode(value + ": " + config.scale[value]));
      scale.appendChild(label);
    });
  }

  function begin() {
    const value = $("listener").value.trim();
    if (!Object.prototype.hasOwnProperty.call(config.playlists, value)) {
      $("start-error").textContent = "Unknown listener number " + JSON.stringify(value) +
        ": use one from 1 to " + Object.keys(config.playlists).length + ".";
      return;
    }
    listener = value;
    playlist = config.playlists[value];
    state = load() || { kit: config.kit, listener: Number(value), started_at: now(), ratings: {} };
    position = playlist.findIndex((entry) => !(entry.id in state.ratings && state.ratings[entry.id].rating));
    save();
    $("start").hidden = true;
    if (position < 0) { finish(); return; }
    $("trial").hidden = false;
    show();
  }

  function record() {
    const entry = playlist[position];
    if (!state.ratings[entry.id]) {
      state.ratings[entry.id] = { item: entry.id, position: position + 1, rating: null, shown_at: now(),
                                  ended_at: null, rated_at: null, plays: 0 };
    }
    return state.ratings[entry.id];
  }

  function show() {
    const entry = playlist[position], video = $("video"), rec = record();
    $("progress-text").textContent = "Video " + (position + 1) + " of " + playlist.length;
    $("progress-bar").style.width = (100 * position / playlist.length) + "%";
    $("caption").hidden = !entry.caption;
    $("caption").textContent = entry.caption || "";
    $("video-error").textContent = "";
    document.querySelectorAll("input[name=rating]").forEach((input) => {
      input.checked = rec.rating === Number(input.value);
    });
    $("scale").disabled = !rec.ended_at;
    $("hint").hidden = Boolean(rec.ended_at);
    $("next").disabled = !rec.rating;
    $("next").textContent = position + 1 === playlist.length ? "Finish" : "Next";
    video.src = entry.video;
    video.load();
    const playing = video.play();
    if (playing && playing.catch) playing.catch(() => { /* autoplay refused: the listener presses play */ });
    save();
  }

  function rate(value) {
    const rec = record();
    rec.rating = value;
    rec.rated_at = now();
    $("next").disabled = false;
    save();
  }

  function next() {
    if (!record().rating) return;
    position += 1;
    if (position >= playlist.length) { finish(); return; }
    show();
  }

  function results() {
    const ratings = playlist.map((entry, index) => {
      const rec = state.ratings[entry.id] || { item: entry.id, position: index + 1, rating: null };
      const check = entry.expected !== undefined;
      return Object.assign({}, rec, { check: check, expected: check ? entry.expected : null,
                                      passed: check ? rec.rating === entry.expected : null });
    });
    const checks = ratings.filter((r) => r.check);
    return { format: "cause-pl-mos-ratings/1", kit: config.kit, listener: Number(listener),
             started_at: state.started_at, finished_at: state.finished_at || null,
             user_agent: navigator.userAgent,
             attention: { checks: checks.length, passed: checks.filter((r) => r.passed).length },
             ratings: ratings };
  }

  const COLUMNS = ["listener", "item", "position", "rating", "check", "expected", "passed",
                   "shown_at", "ended_at", "rated_at", "plays"];
  function csv(data) {
    const cell = (v) => (v === null || v === undefined) ? "" : String(v);
    const rows = data.ratings.map((r) => COLUMNS.map((c) => cell(c === "listener" ? data.listener : r[c])).join(","));
    return [COLUMNS.join(",")].concat(rows).join("\n") + "\n";
  }

  function download(text, type, extension) {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], { type: type }));
    link.download = "mos-ratings-listener-" + listener + "." + extension;
    document.body.appendChild(link);
    link.click();
    setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  }

  function finish() {
    if (!state.finished_at) { state.finished_at = now(); save(); }
    $("video").removeAttribute("src");
    $("trial").hidden = true;
    $("done").hidden = false;
  }

  function init() {
    document.title = config.title;
    $("title").textContent = config.title;
    $("question").textContent = config.question;
    $("start-question").textContent = config.question;
    buildScale();
    const video = $("video");
    video.addEventListener("play", () => { if (state && playlist[position]) { record().plays += 1; save(); } });
    video.addEventListener("ended", () => {
      const rec = record();
      if (!rec.ended_at) rec.ended_at = now();
      $("scale").disabled = false;
      $("hint").hidden = true;
      save();
    });
    video.addEventListener("error", () => {
      $("video-error").textContent = "This video cannot be played here; please try another browser " +
        "(Chrome, Firefox, Safari, Edge) and tell the experimenter.";
    });
    $("begin").addEventListener("click", begin);
    $("listener").addEventListener("keydown", (event) => { if (event.key === "Enter") begin(); });
    $("next").addEventListener("click", next);
    $("download-json").addEventListener("click", () =>
      download(JSON.stringify(results(), null, 2) + "\n", "application/json", "json"));
    $("download-csv").addEventListener("click", () => download(csv(results()), "text/csv", "csv"));
    const fromUrl = new URLSearchParams(window.location.search).get("listener");
    if (fromUrl) $("listener").value = fromUrl;
  }

  init();
})();
