// Formatting of times, sizes, marks and safety numbers.

export type Mark = "sending" | "queued" | "stored" | "delivered" | "read" | "failed";

/** The marks the terminal chat uses too. */
export const MARK_GLYPH: Record<Mark, string> = {
  sending: "…",
  queued: "↻",
  stored: "•",
  delivered: "✓",
  read: "✓✓",
  failed: "✗",
};

export const MARK_TITLE: Record<Mark, string> = {
  sending: "sending",
  queued: "waiting for the connection",
  stored: "stored by the relay",
  delivered: "delivered",
  read: "read",
  failed: "not sent",
};

export function time(ms: number): string {
  const d = new Date(ms);
  const now = new Date();
  const hm = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (d.toDateString() === now.toDateString()) return hm;
  return `${d.toLocaleDateString(undefined, { month: "short", day: "numeric" })} ${hm}`;
}

export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB"];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function percent(done: number, total: number): string {
  return total > 0 ? `${Math.floor((100 * done) / total)} %` : "";
}

/** 60 digits as 12 groups of 5, in 3 rows of 4 groups (as the terminal chat shows them). */
export function safetyRows(digits: string): string[] {
  const groups = digits.replace(/\D/g, "").match(/.{1,5}/g) ?? [];
  const rows: string[] = [];
  for (let i = 0; i < groups.length; i += 4) rows.push(groups.slice(i, i + 4).join(" "));
  return rows;
}

/** Milliseconds since the epoch from an RFC 3339 string or a number. */
export function toMs(at: string | number | undefined): number {
  if (typeof at === "number") return at;
  if (!at) return Date.now();
  const t = Date.parse(at);
  return Number.isNaN(t) ? Date.now() : t;
}
