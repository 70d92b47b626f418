// The astrologer's dashboard: an incoming request rings (a short beep), raises a browser
// notification while the tab is hidden, and the tab's title counts the waiting requests.
// The server pushes the requests list (#requests, one [data-request] per waiting request);
// this script only notices which ids are new.
(function () {
  "use strict";

  var baseTitle = document.title;
  var seen = null; // ids of the requests already rung for; null until the first look
  window.consultRings = 0; // how many times a new request rang (the browser tests read it)

  // --- the sound: browsers let a page play audio only after the person interacted with it,
  // so the audio context is made on the first click or key press, and a ring before that
  // is silent (the title and the notification still tell).
  var audio = null;
  function unlockAudio() {
    var AudioContext = window.AudioContext || window.webkitAudioContext;
    if (!audio && AudioContext) audio = new AudioContext();
    if (audio && audio.state === "suspended") audio.resume();
  }
  document.addEventListener("pointerdown", unlockAudio, true);
  document.addEventListener("keydown", unlockAudio, true);

  function beep(at, frequency) {
    var tone = audio.createOscillator(), gain = audio.createGain();
    tone.type = "sine";
    tone.frequency.value = frequency;
    // A quick fade in and out: a hard start or stop clicks.
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
    tone.connect(gain).connect(audio.destination);
    tone.start(at);
    tone.stop(at + 0.2);
  }

  function ring() {
    window.consultRings += 1;
    if (!audio) return;
    if (audio.state === "suspended") audio.resume();
    var now = audio.currentTime;
    beep(now, 880);
    beep(now + 0.22, 1320);
  }

  // --- browser notifications: asked for only when the astrologer presses the button.
  var supported = "Notification" in window;
  function showNotificationState() {
    var alerts = document.querySelector("[data-alerts]");
    if (!alerts) return;
    var button = alerts.querySelector("[data-enable-notifications]");
    var state = alerts.querySelector("[data-notifications-state]");
    alerts.hidden = false;
    var permission = supported ? Notification.permission : "unsupported";
    button.hidden = permission !== "default";
    // The words come from the page (dashboard/page.html), in the page's language.
    state.textContent = alerts.dataset[permission] || "";
  }
  document.addEventListener("click", function (event) {
    if (!event.target.closest("[data-enable-notifications]") || !supported) return;
    Notification.requestPermission().then(showNotificationState);
  });

  function notify(request) {
    if (!supported || !document.hidden || Notification.permission !== "granted") return;
    var words = document.querySelector("[data-alerts]").dataset;
    var from = request.dataset.from || words.someone;
    var note = new Notification(words.newRequest, {
      body: words.waiting.replace("{0}", from),
      tag: "consult-request-" + request.dataset.request,
    });
    note.onclick = function () { window.focus(); note.close(); };
  }

  // --- look at the requests list whenever htmx swapped something in (the socket's push,
  // an answer's response, the re-sync after a reconnect): ring once per unseen request.
  function look() {
    var requests = Array.prototype.slice.call(document.querySelectorAll("#requests [data-request]"));
    document.title = requests.length ? "(" + requests.length + ") " + baseTitle : baseTitle;
    var ids = requests.map(function (r) { return r.dataset.request; });
    if (seen === null) { seen = ids; return; } // waiting when the page opened: not new
    var fresh = requests.filter(function (r) { return seen.indexOf(r.dataset.request) === -1; });
    seen = ids;
    if (!fresh.length) return;
    ring();
    fresh.forEach(notify);
  }

  document.addEventListener("DOMContentLoaded", function () { showNotificationState(); look(); });
  document.addEventListener("htmx:oobAfterSwap", look);
  document.addEventListener("htmx:afterSwap", look);
})();
