// The demo pages' live behaviour, built on the realtime client (whose liveList keeps
// the lists): a connection-state indicator, forms that follow it and show refusals,
// and JSON calls to the records API.

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

// A form that posts with `submit(form)`: off while the page is not live (what it posts
// would not show until it is), and a refusal shown beside it, not only in the console.
export function liveForm(client, form, submit) {
  const error = element("p", { className: "error", role: "alert", hidden: true });
  form.after(error);
  const fields = [...form.elements];
  const follow = (state) => {
    for (const field of fields) field.disabled = state !== "connected";
    form.dataset.state = state;
  };
  client.on("state", follow);
  follow(client.state);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    try {
      await submit(form);
      form.reset();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  });
  return error;
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
