// Consult's small bit of browser glue: the live bill ticker, choices made before the
// scripts ran, the End Session dialog, the socket's connection state, and toasts. The
// server stays the source of truth: the ticker only interpolates between the figures the
// server rendered.
(function () {
  "use strict";

  // The pages show times in the browser's own time zone (consult/web/local_time.py): tell
  // the server which it is, for every request from now on.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) {
      document.cookie = "tz=" + zone + "; path=/; max-age=31536000; samesite=lax"; // "Asia/Kolkata"
    }
  } catch (e) { /* no Intl: India's time, the default */ }

  function pad(n) { return String(n).padStart(2, "0"); }
  function duration(seconds) {
    seconds = Math.max(0, seconds);
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }
  var indianGrouping = new Intl.NumberFormat("en-IN", { maximumFractionDigits: 0 });
  function rupees(paise) {
    var sign = paise < 0 ? "-" : "";
    paise = Math.abs(paise);
    // Indian grouping, as consult/money.py writes it (₹1,00,000.00), so a ticking figure
    // never disagrees with the server's.
    var whole = indianGrouping.format(Math.floor(paise / 100));
    return sign + "₹" + whole + "." + pad(paise % 100);
  }

  // --- live bill: same integer arithmetic as consult/billing.py
  function tick() {
    document.querySelectorAll("[data-ticker]").forEach(function (el) {
      if (!el.dataset.loadedAt) el.dataset.loadedAt = String(performance.now());
      var base = parseInt(el.dataset.elapsed, 10), rate = parseInt(el.dataset.rate, 10);
      var paused = el.dataset.paused === "1";
      // Where billing stops by itself (the funds, a spend cap or a time limit); the
      // astrologer's page does not know the user's wallet, so theirs may have none.
      var stop = el.dataset.stop ? parseInt(el.dataset.stop, 10) : Infinity;
      var since = paused ? 0 : Math.floor((performance.now() - parseFloat(el.dataset.loadedAt)) / 1000);
      var elapsed = Math.min(base + since, stop);
      var cost = Math.floor(elapsed * rate / 60), left = stop - elapsed;
      el.querySelectorAll("[data-field=elapsed]").forEach(function (f) { f.textContent = duration(elapsed); });
      el.querySelectorAll("[data-field=cost]").forEach(function (f) { f.textContent = rupees(cost); });
      if (el.dataset.wallet) {
        var wallet = parseInt(el.dataset.wallet, 10);
        el.querySelectorAll("[data-field=balance]").forEach(function (f) { f.textContent = rupees(wallet - cost); });
      }
      if (stop !== Infinity) {
        el.querySelectorAll("[data-field=left]").forEach(function (f) { f.textContent = duration(left); });
      }
      var nudge = el.querySelector("[data-nudge]");
      if (nudge) {
        // Only the balance running out is an alarm; the user's own limit is their plan.
        var low = el.dataset.endsBy === "balance" && left <= parseInt(el.dataset.warn || "60", 10);
        nudge.hidden = !low;
        el.classList.toggle("is-low", low);
      }
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("htmx:load", tick);

  // --- a choice made before the deferred scripts ran (a search typed, a status picked) went
  // to no one: htmx had not bound its element yet. htmx sets up on this same event, before
  // this script's turn, so here every element an input or change trigger watches (a form:
  // any of its fields) that no longer holds what the page was drawn with is heard now.
  function edited(field) {
    if (field.options) {
      // A single select with no option marked shows its first: that is its default too.
      var options = Array.prototype.slice.call(field.options);
      var marked = options.filter(function (o) { return o.defaultSelected; });
      if (!field.multiple && !marked.length) marked = options.slice(0, 1);
      return options.some(function (o) { return o.selected !== (marked.indexOf(o) >= 0); });
    }
    if (field.type === "checkbox") return field.checked !== field.defaultChecked;
    if (field.type === "radio") return field.checked && !field.defaultChecked; // the one picked
    return /^(text|search|number|email|tel|url|textarea)$/.test(field.type) && field.value !== field.defaultValue;
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[hx-trigger]").forEach(function (el) {
      var trigger = el.getAttribute("hx-trigger");
      if (!/\b(input|change)\b/.test(trigger)) return;
      if (!Array.prototype.some.call(el.elements || [el], edited)) return;
      htmx.trigger(el, /\bsubmit\b/.test(trigger) ? "submit" : /\bchange\b/.test(trigger) ? "change" : "input");
    });
  });

  // --- the End Session dialog
  document.addEventListener("htmx:load", function (event) {
    var dialog = event.detail.elt;
    if (dialog.matches && dialog.matches("dialog[data-end-dialog]") && !dialog.open) {
      dialog.showModal();
      dialog.addEventListener("close", function () {
        var back = document.querySelector(dialog.dataset.returnFocus);
        dialog.remove();
        if (back && !back.disabled) back.focus();
      });
    }
  });
  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-close-dialog]");
    if (close) { close.closest("dialog").close(); return; }
    var confirm = event.target.closest("[data-confirm-end]");
    if (confirm) {
      var form = document.querySelector(confirm.dataset.confirmEnd);
      confirm.closest("dialog").close();
      if (form) {
        var panel = form.closest("[data-session]");
        ending = panel && panel.id;
        htmx.trigger(form, "confirmed");
      }
      return;
    }
    var dismiss = event.target.closest("[data-dismiss]");
    if (dismiss) dismiss.closest("[data-toast]").remove();
  });

  // The End button had focus and is gone with the live bill: put focus on the ended banner,
  // so keyboard and screen-reader users land on what happened instead of the page's top.
  // The end's own answer and the socket's push race, and each may swap the banner anew,
  // so keep re-focusing the newest banner for a moment (unless the user moved on).
  var ending = null;
  function focusEndedBanner() {
    if (!ending || (document.activeElement && document.activeElement !== document.body)) return;
    var banner = document.querySelector("#" + ending + " [data-ended-banner]");
    if (!banner) return;
    banner.focus();
    var settled = ending;
    setTimeout(function () { if (ending === settled) ending = null; }, 3000);
  }
  document.addEventListener("htmx:afterSettle", focusEndedBanner);
  document.addEventListener("htmx:oobAfterSwap", function () { setTimeout(focusEndedBanner, 0); });

  // --- toasts for failures the page cannot show in place: a copy of the server's own
  // toast (templates/_toast.html, in <template id="toast-error">) with the words filled in.
  function toast(message) {
    var box = document.getElementById("toasts"), template = document.getElementById("toast-error");
    if (!box || !template) return;
    var el = template.content.firstElementChild.cloneNode(true);
    el.querySelector("[data-toast-message]").textContent = message;
    box.append(el);
  }
  // The words come from the page (base.html), in the page's language.
  document.addEventListener("htmx:sendError", function () {
    var template = document.getElementById("toast-error");
    if (template) toast(template.dataset.unreachable);
  });

  // --- socket pushes: each part is swapped where this page shows it, and dropped where it
  // does not. An event reaches every page the viewer has open (home, the session, the
  // dashboard, the summary), and the server renders the same parts for all of them; only the
  // page knows what it shows: which session panels, whether the End dialog is open, a card of
  // the astrologer list. Sending by page would make the server track that (and still not know
  // about the dialog), so the socket's parts with no target are removed before the ws
  // extension swaps them (htmx would log htmx:oobErrorNoTarget for each). An htmx request's
  // own answer (an xhr) is left alone: that is the page asking for what it shows.
  function shown(part) {
    var spec = part.getAttribute("hx-swap-oob") || "true", colon = spec.indexOf(":");
    try {
      return document.querySelector(colon > 0 ? spec.slice(colon + 1) : "#" + CSS.escape(part.id)) !== null;
    } catch (error) {
      return true; // not a CSS selector (htmx's own syntax, or no id): htmx decides, and says so
    }
  }
  htmx.defineExtension("shown-only", {
    transformResponse: function (text, xhr) {
      if (xhr) return text;
      var parsed = document.createElement("template");
      parsed.innerHTML = text;
      var parts = Array.from(parsed.content.children), kept = parts.filter(shown);
      if (kept.length === parts.length) return text;
      parsed.content.replaceChildren.apply(parsed.content, kept);
      return parsed.innerHTML;
    }
  });

  // --- the socket: say when it is down; after a reconnect, re-fetch every live fragment.
  // `current` is the page's live socket: a close event from a socket already replaced
  // (say, by a reconnect) must not put the "Reconnecting…" banner back up.
  var current = null, wrapper = null, everOpened = false;
  var createWebSocket = htmx.createWebSocket;
  if (createWebSocket) {
    htmx.createWebSocket = function (url) { current = createWebSocket(url); return current; };
  }
  function connection(open) {
    var banner = document.getElementById("connection");
    if (banner) banner.hidden = open;
    document.body.dataset.socket = open ? "open" : "closed";
  }
  document.addEventListener("htmx:wsOpen", function (event) {
    wrapper = event.detail.socketWrapper;
    connection(true);
    if (everOpened) htmx.trigger(document.body, "resync");
    everOpened = true;
  });
  document.addEventListener("htmx:wsClose", function (event) {
    var socket = event.detail.event && event.detail.event.target;
    if (socket && current && socket !== current) return;
    connection(false);
  });
  // A phone losing signal rarely closes its socket cleanly: when the browser knows it is
  // offline, say so at once and drop the socket; when it is back, reconnect without waiting
  // for the extension's back-off (the reconnect re-syncs the page).
  window.addEventListener("offline", function () {
    connection(false);
    if (current && current.readyState <= WebSocket.OPEN) current.close(4000, "offline");
  });
  window.addEventListener("online", function () {
    if (wrapper && (!current || current.readyState !== WebSocket.OPEN)) wrapper.reconnect();
  });
  // A conflict (the session ended meanwhile, say) means this page is behind: re-sync it.
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr && event.detail.xhr.status;
    if (status === 409) htmx.trigger(document.body, "resync");
  });
  document.addEventListener("htmx:wsAfterSend", function (event) {
    var form = event.detail.elt;
    if (form && form.matches("form[data-compose]")) form.reset();
  });
  // Keep the newest chat message in view.
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.classList && target.classList.contains("messages")) target.scrollTop = target.scrollHeight;
  });
})();
