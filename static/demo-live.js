// The demo pages' live behaviour, built on the realtime client: a list that loads its
// records and its subscription in one step (snapshot), then applies every event, and
// a connection-state indicator. Rendering is the page's; this only keeps the records.

export function showConnectionState(client, element) {
  const labels = { connecting: "connecting…", connected: "live", disconnected: "offline" };
  const update = (state) => {
    const via = state === "connected" && client.transport ? ` (${client.transport})` : "";
    element.textContent = labels[state] + via;
    element.dataset.state = state;
    element.dataset.transport = client.transport || "";
  };
  client.on("state", update);
  update(client.state);
}

export function liveList(client, pattern, { list, render, empty = "Nothing yet." }) {
  const records = new Map();
  const draw = () => {
    const sorted = [...records.values()].sort((a, b) => a.id - b.id);
    if (sorted.length === 0) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = empty;
      list.replaceChildren(li);
    } else {
      list.replaceChildren(...sorted.map(render));
    }
  };
  const unsubscribe = client.subscribe(
    pattern,
    (event) => {
      if (event.action === "delete") records.delete(event.record.id);
      else if (event.action !== "custom") records.set(event.record.id, event.record);
      draw();
    },
    {
      snapshot: true,
      // Called on the first reply and again after every reconnect: the records as
      // they are now, so nothing missed while away is lost.
      onSnapshot: (snapshot) => {
        records.clear();
        for (const record of snapshot.records) records.set(record.id, record);
        draw();
      },
    },
  );
  return unsubscribe;
}

// JSON calls to the records API with the session cookie.
export async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok && response.status !== 204) {
    const detail = await response.json().catch(() => ({}));
    throw new Error(detail.error ? detail.error.message : `HTTP ${response.status}`);
  }
  return response.status === 204 ? null : response.json();
}

export function element(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}
