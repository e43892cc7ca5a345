// Small DOM helpers. Elements are built with createElement and text nodes only (no
// HTML strings), which keeps the page safe with untrusted text and within its CSP.

type Child = Node | string | number | null | undefined | false;

export interface Attrs {
  class?: string;
  testid?: string;
  text?: string;
  title?: string;
  type?: string;
  name?: string;
  value?: string;
  placeholder?: string;
  autocomplete?: string;
  for?: string;
  id?: string;
  role?: string;
  rel?: string;
  datetime?: string;
  hidden?: boolean;
  disabled?: boolean;
  required?: boolean;
  multiple?: boolean;
  minlength?: number;
  aria?: Record<string, string>;
  data?: Record<string, string>;
  on?: { [K in keyof HTMLElementEventMap]?: (e: HTMLElementEventMap[K]) => void };
}

/** `h("button", { class: "primary", testid: "send", on: { click } }, "Send")`. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    switch (key) {
      case "class":
        el.className = v as string;
        break;
      case "testid":
        el.dataset.testid = v as string;
        break;
      case "text":
        el.textContent = v as string;
        break;
      case "hidden":
      case "disabled":
      case "required":
      case "multiple":
        (el as unknown as Record<string, boolean>)[key] = Boolean(v);
        break;
      case "aria":
        for (const [a, av] of Object.entries(v as Record<string, string>)) el.setAttribute(`aria-${a}`, av);
        break;
      case "data":
        for (const [d, dv] of Object.entries(v as Record<string, string>)) el.dataset[d] = dv;
        break;
      case "on":
        for (const [ev, fn] of Object.entries(v as Record<string, EventListener>)) el.addEventListener(ev, fn);
        break;
      case "value":
        (el as unknown as { value: string }).value = v as string;
        break;
      default:
        el.setAttribute(key, String(v));
    }
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces every child of `el`. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

/** A labelled form field. */
export function field(label: string, input: HTMLInputElement | HTMLTextAreaElement): HTMLLabelElement {
  return h("label", { class: "field" }, h("span", { text: label }), input);
}

/** The element, or a loud error when the page is broken. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el as T;
}
