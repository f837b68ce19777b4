// Live or not, and why, for pages that follow a stream with htmx's SSE extension
// (htmx-ext-sse 2.x); loaded after it by the template helper realtime_htmx_scripts().
// docs/htmx.md, "When the stream ends", tells the attributes, states and codes.
//
// Each element with `sse-connect` gets data-live="connecting|live|reconnecting|
// signed-out|not-live". Optional attributes on it, each a CSS selector:
//   data-live-status  an element that gets the same data-live and the state's text
//   data-live-list    an element that gets data-stale="<code>" while what it shows is
//                     not followed (session_ended, the refusal's code, refused), as the
//                     JavaScript client's liveList marks its list
// and data-live-text-<state> words a state's text ("{reason}" is the server's reason).
(() => {
  "use strict";

  const TEXTS = {
    connecting: "connecting…",
    live: "live",
    reconnecting: "reconnecting…",
    "signed-out": "signed out — reload to sign in",
    "not-live": "not live: {reason}",
  };
  const HTTP_REFUSAL = "the server refused the stream"; // an HTTP error tells no more
  const CONNECT = "[sse-connect], [data-sse-connect]";
  const streams = new WeakMap(); // sse-connect element -> its stream's state
  const elements = new WeakMap(); // EventSource -> its sse-connect element

  function parse(data) {
    try {
      return JSON.parse(data) || {};
    } catch {
      return {}; // not the runtime's JSON: a proxy's, say
    }
  }

  function target(element, attribute) {
    const selector = element.getAttribute(attribute);
    return selector ? document.querySelector(selector) : null;
  }

  /** Show `state`; `stale` is the list's new mark: a code, null to clear it, or
   * undefined to leave it as it is (the records stay, marked or not). */
  function show(element, state, stale, reason) {
    element.setAttribute("data-live", state);
    const status = target(element, "data-live-status");
    if (status) {
      const text = element.getAttribute(`data-live-text-${state}`) ?? TEXTS[state];
      status.setAttribute("data-live", state);
      status.textContent = text.replace("{reason}", () => reason ?? ""); // no $-patterns
    }
    const list = target(element, "data-live-list");
    if (list && stale) list.setAttribute("data-stale", stale);
    else if (list && stale === null) list.removeAttribute("data-stale");
  }

  function streamOf(element) {
    let stream = streams.get(element);
    if (stream) return stream;
    const sessionEnded = () => {
      stream.signedOut = true;
      show(element, "signed-out", "session_ended");
    };
    stream = {
      hadUser: false, // the stream was a user's: a visitor's now means the session ended
      signedOut: false, // until a stream comes with a user again (a reload, a new login)
      // The same two functions for every EventSource of the element: added once each.
      onConnected(message) {
        if (parse(message.data).user) {
          stream.hadUser = true;
          stream.signedOut = false;
        } else if (stream.hadUser) {
          sessionEnded();
        }
      },
      onClose(message) {
        if (parse(message.data).code === 4401) sessionEnded();
      },
    };
    streams.set(element, stream);
    return stream;
  }

  document.addEventListener("htmx:afterProcessNode", (event) => {
    const element = event.target;
    if (element.matches?.(CONNECT) && !element.hasAttribute("data-live")) {
      show(element, "connecting");
    }
  });

  // On every (re)connection, with the EventSource: the stream's JSON messages tell
  // whose it is and why it ends; htmx swaps none of them.
  document.addEventListener("htmx:sseOpen", (event) => {
    const element = event.target;
    const { source } = event.detail;
    const stream = streamOf(element);
    elements.set(source, element);
    source.addEventListener("connected", stream.onConnected);
    source.addEventListener("close", stream.onClose);
  });

  // A snapshot swapped in: the list is whole and followed (unless the page was a
  // user's and its session ended: a visitor's snapshot does not make it right).
  document.addEventListener("htmx:sseMessage", (event) => {
    const message = event.detail;
    if (!/:snapshot$/.test(message.type)) return;
    const element = elements.get(message.target) ?? event.target.closest(CONNECT);
    if (element && !streamOf(element).signedOut) show(element, "live", null);
  });

  // "error" names both the stream's error messages (a refused subscription, with
  // data) and the EventSource's own failures (without).
  document.addEventListener("htmx:sseError", (event) => {
    const element = event.target;
    const { error, source } = event.detail;
    if (streamOf(element).signedOut) return;
    if (error.data) {
      const { code, message } = parse(error.data);
      show(element, "not-live", code || "refused", message || code);
    } else if (source.readyState === EventSource.CLOSED) {
      show(element, "not-live", "refused", HTTP_REFUSAL); // htmx tries again, slower
    } else {
      show(element, "reconnecting"); // the browser reconnects; a snapshot follows
    }
  });
})();
