// DOM helpers. Every piece of data reaches the page as a text node or an
// attribute value set through the DOM: nothing is ever parsed as HTML, so
// an event, an endpoint's answer or a subscription name holding markup is
// shown as the characters it is (the CSP's Trusted Types would refuse an
// HTML string anyway).

// h builds an element: h("a", {href: "#/x", class: "b"}, "text", child).
// Props starting with "on" are listeners; strings and numbers become text.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = !!v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// replace empties el and puts children in it.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// when formats a time as local date and time, with how long ago.
export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function ago(iso) {
  if (!iso) return "";
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  const abs = Math.abs(s);
  const [n, unit] = abs < 60 ? [abs, "s"] : abs < 3600 ? [Math.round(abs / 60), "min"] : abs < 86400 ? [Math.round(abs / 3600), "h"] : [Math.round(abs / 86400), "d"];
  return s >= 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
}

// pretty shows JSON text indented; other text as it is.
export function pretty(text) {
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

// badge is a colored state label.
export function badge(state, label) {
  return h("span", { class: "badge " + state }, label || state.replace("_", " "));
}

// copyButton copies text and says so.
export function copyButton(text, label = "Copy") {
  const b = h("button", { type: "button", class: "copy" }, label);
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied";
    } catch {
      // Clipboard refused (an iframe without clipboard-write): select it.
      const code = b.parentElement && b.parentElement.querySelector("code");
      if (code) window.getSelection().selectAllChildren(code);
      b.textContent = "Press Ctrl+C";
    }
    setTimeout(() => { b.textContent = label; }, 2500);
  });
  return b;
}

let toastTimer;
// toast says something briefly in a corner.
export function toast(text) {
  let t = document.querySelector(".toast");
  if (!t) { t = h("div", { class: "toast", role: "status" }); document.body.append(t); }
  t.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.remove(), 4000);
}

// emptyState is what a page shows when it has nothing to list.
export function emptyState(title, text, ...actions) {
  return h("div", { class: "empty" }, h("h2", {}, title), h("p", {}, text), actions.length ? h("p", {}, actions) : null);
}

// errorNotice shows a failed call: its problem details and each field.
export function errorNotice(err, title = "That did not work") {
  const p = err && err.problem;
  const fields = (p && p.errors) || [];
  return h("div", { class: "notice error", role: "alert" },
    h("h3", {}, title),
    h("div", {}, (p && (p.detail || p.title)) || (err && err.message) || String(err)),
    fields.length ? h("ul", {}, fields.map((f) => h("li", {}, h("code", {}, f.field), " ", f.detail))) : null);
}

// field is a labelled control with a hint and a place for its error.
export function field(label, control, hint, name) {
  const id = control.id || "f-" + Math.random().toString(36).slice(2, 9);
  control.id = id;
  if (name) control.dataset.field = name;
  return h("div", { class: "field", dataset: name ? { for: name } : undefined },
    h("label", { for: id }, label), control, hint ? h("p", { class: "hint" }, hint) : null);
}
