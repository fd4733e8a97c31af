// hostplane panel: the live map. Follows /map/events with an EventSource
// (server-sent events, no polling) and puts each fragment the server sends into
// #map-live. Loaded by every page; acts only where a #map-live element is, also
// after htmx swapped the page in (boosted navigation). No inline script, no eval.
(function () {
  'use strict';
  var source = null;
  var target = null;

  function status(state, text) {
    var el = document.getElementById('map-status');
    if (el) {
      el.setAttribute('data-live', state);
      el.textContent = text;
    }
  }

  function stop() {
    if (source) {
      source.close();
      source = null;
    }
  }

  function connect() {
    var el = document.getElementById('map-live');
    if (el === target && source) {
      return;
    }
    stop();
    target = el;
    if (!el || !window.EventSource) {
      return;
    }
    var url = el.getAttribute('data-events');
    if (!url) {
      return;
    }
    var s = new EventSource(url);
    source = s;
    s.addEventListener('open', function () {
      status('live', 'live');
    });
    s.addEventListener('error', function () {
      if (s.readyState === EventSource.CLOSED) {
        status('closed', 'not live: reload the page');
      } else {
        status('reconnecting', 'reconnecting…');
      }
    });
    s.addEventListener('map', function (e) {
      if (!el.isConnected) {
        stop();
        return;
      }
      el.innerHTML = e.data;
      status('live', 'live · updated ' + new Date().toLocaleTimeString());
    });
    s.addEventListener('paused', function () {
      s.close();
      status('paused', 'paused after 30 minutes: reload the page to follow again');
    });
    s.addEventListener('signed-out', function () {
      s.close();
      status('closed', 'signed out');
    });
  }

  document.addEventListener('DOMContentLoaded', connect);
  document.addEventListener('htmx:afterSettle', connect);
  document.addEventListener('htmx:historyRestore', connect);
  window.addEventListener('pageshow', connect);
  if (document.readyState !== 'loading') {
    connect();
  }
})();
