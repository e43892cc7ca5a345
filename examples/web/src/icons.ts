// Small line icons drawn as inline SVG (no icon font or emoji font needed).

const NS = "http://www.w3.org/2000/svg";

type Shape = [tag: "path" | "rect" | "polyline", attrs: Record<string, string>];

const SHAPES: Record<string, Shape[]> = {
  attach: [["path", { d: "M16 6v9a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v9a1 1 0 0 1-2 0V6" }]],
  lock: [
    ["rect", { x: "5", y: "11", width: "14", height: "10", rx: "2" }],
    ["path", { d: "M8 11V8a4 4 0 0 1 8 0v3" }],
  ],
  file: [
    ["path", { d: "M6 3h8l5 5v13H6z" }],
    ["polyline", { points: "14 3 14 8 19 8" }],
  ],
};

export function icon(name: keyof typeof SHAPES): SVGSVGElement {
  const svg = document.createElementNS(NS, "svg");
  for (const [k, v] of Object.entries({
    viewBox: "0 0 24 24",
    width: "18",
    height: "18",
    fill: "none",
    stroke: "currentColor",
    "stroke-width": "2",
    "stroke-linecap": "round",
    "stroke-linejoin": "round",
    "aria-hidden": "true",
    class: "icon",
  })) {
    svg.setAttribute(k, v);
  }
  for (const [tag, attrs] of SHAPES[name] ?? []) {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    svg.append(el);
  }
  return svg;
}
