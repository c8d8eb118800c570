// keyless ui: live updates. The server says "changed" on its event stream
// when an Application it watches (as you) changed; the page then fetches
// itself and swaps its <main> for the new one. The server renders and
// escapes everything: nothing here builds HTML from data.
(() => {
  'use strict';
  const live = document.getElementById('live');
  const setState = (state, text) => {
    live.dataset.state = state;
    live.textContent = text;
  };
  let inflight = false;
  let again = false;
  let timer = null;
  let stale = false;

  const swap = (doc) => {
    const next = doc.getElementById('main');
    const cur = document.getElementById('main');
    if (!next || !cur) return;
    const open = Array.from(cur.querySelectorAll('details'), (d) => d.open);
    const focused = document.activeElement && document.activeElement.id;
    cur.replaceWith(next);
    next.querySelectorAll('details').forEach((d, i) => { if (open[i]) d.open = true; });
    if (focused) {
      const el = document.getElementById(focused);
      if (el) el.focus();
    }
    document.title = doc.title;
  };

  const refresh = async () => {
    const active = document.activeElement;
    if (active && (active.tagName === 'SELECT' || active.tagName === 'INPUT')) {
      // Do not pull a form from under the viewer's hands: try again soon.
      schedule(1000);
      return;
    }
    if (inflight) { again = true; return; }
    inflight = true;
    try {
      const res = await fetch(window.location.href, { headers: { Accept: 'text/html' }, cache: 'no-store', credentials: 'same-origin' });
      const text = await res.text();
      swap(new DOMParser().parseFromString(text, 'text/html'));
      if (!stale) setState('live', 'live');
    } catch (e) {
      setState('stale', 'stale: refreshing failed (' + e.message + '); the page shows older data');
    } finally {
      inflight = false;
      if (again) { again = false; schedule(0); }
    }
  };

  const schedule = (ms) => {
    clearTimeout(timer);
    timer = setTimeout(refresh, ms);
  };

  if (!window.EventSource) return;
  setState('connecting', 'connecting…');
  const events = new EventSource('/events');
  events.addEventListener('state', (e) => {
    const [state, since] = e.data.split(' ');
    if (state === 'live') {
      const wasStale = stale;
      stale = false;
      setState('live', 'live');
      if (wasStale) schedule(0);
      return;
    }
    stale = true;
    const at = since ? new Date(since).toLocaleTimeString() : 'just now';
    setState('stale', 'stale since ' + at + ': the watch dropped, retrying; the page shows older data');
  });
  events.addEventListener('changed', () => schedule(100));
  events.addEventListener('open', () => { if (stale) schedule(0); });
  events.addEventListener('error', () => {
    stale = true;
    setState('stale', 'stale: lost the connection to keyless ui, retrying; the page shows older data');
  });
})();
