// reportbot web chat: enhances the server-rendered page. The page works without this file.
// Nothing is kept in the browser: no storage, no cookies of our own (the session cookie is HttpOnly).
(function () {
  "use strict";
  var FETCH = { "X-Reportbot-Fetch": "1" };
  var busy = false;

  function exitUrl() {
    return document.body.getAttribute("data-exit");
  }

  // Quick exit: end the session on the server (keepalive survives leaving the page), then replace this
  // page in the history with the neutral site, so Back does not come here.
  function quickExit(event) {
    if (event) { event.preventDefault(); }
    var form = document.getElementById("exit-form");
    try {
      fetch(form.action, { method: "POST", body: new FormData(form), headers: FETCH,
                           credentials: "same-origin", keepalive: true });
    } catch (e) { /* leave anyway */ }
    document.body.innerHTML = "";
    window.location.replace(exitUrl());
  }

  function enhance() {
    var hidden = document.querySelectorAll("[data-js-only], [data-location]");
    for (var i = 0; i < hidden.length; i++) { hidden[i].hidden = false; }
  }

  function focusOn(id, value) {
    var target = null;
    if (value) {
      target = document.querySelector('#controls button[name="option"][value="' + value + '"]');
    }
    if (!target && id) { target = document.getElementById(id); }
    if (target) {
      target.focus();
      if (target.scrollIntoView) { target.scrollIntoView({ block: "nearest" }); }
    }
  }

  function show(data, pressed) {
    if (data.exit) { window.location.replace(data.exit); return; }
    var log = document.querySelector("#log ol");
    var intro = document.querySelector(".intro");
    if (intro) { intro.remove(); }
    if (data.replaced) {
      var old = document.getElementById(data.replaced.id);
      if (old) { old.outerHTML = data.replaced.html; }
    }
    if (data.added) { log.insertAdjacentHTML("beforeend", data.added); }
    document.getElementById("controls").innerHTML = data.controls;
    enhance();
    focusOn(data.focus, data.focus ? null : pressed);
  }

  function post(form, submitter) {
    if (busy) { return; }
    busy = true;
    var body = new FormData(form);
    var pressed = null;
    if (submitter && submitter.name) {
      body.append(submitter.name, submitter.value);
      pressed = submitter.value;
    }
    fetch(form.action, { method: "POST", body: body, headers: FETCH, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 403) { window.location.replace(window.location.pathname); return null; }
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (data) { busy = false; if (data) { show(data, pressed); } })
      .catch(function () { busy = false; form.submit(); });  // the plain post still works
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id === "exit-form") { quickExit(event); return; }
    if (!form.closest("#controls")) { return; }
    event.preventDefault();
    post(form, event.submitter);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { quickExit(event); return; }
    var box = event.target;
    if (event.key === "Enter" && !event.shiftKey && box.id === "text" && box.value.trim()) {
      event.preventDefault();
      post(box.form, null);
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-locate]");
    if (!button) { return; }
    var form = button.form;
    var status = form.querySelector("[data-location-status]");
    if (!navigator.geolocation) { status.textContent = button.getAttribute("data-failed"); return; }
    navigator.geolocation.getCurrentPosition(function (where) {
      form.elements.lat.value = String(where.coords.latitude);
      form.elements.lon.value = String(where.coords.longitude);
      post(form, null);
    }, function () {
      status.textContent = button.getAttribute("data-failed");
    }, { enableHighAccuracy: false, timeout: 15000, maximumAge: 60000 });
  });

  enhance();
})();
