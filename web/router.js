// Views and the URL: `?view=name&…` names the view and its filters, so a reload keeps
// them and Back/Forward move between them (history.pushState). The tab list is an
// ARIA tablist: arrow keys, Home and End move between tabs.
import { runLoader } from "./common.js";

const DEFAULT = "overview";
const tabs = () => [...document.querySelectorAll("nav [role=tab]")];

export const viewParams = () => new URLSearchParams(location.search);
export const currentView = () => {
  const view = viewParams().get("view");
  return view && document.getElementById(view)?.matches("main > section") ? view : DEFAULT;
};

// The URL for a view with its parameters (empty ones left out).
export function viewUrl(view, params = {}) {
  const query = new URLSearchParams({ view });
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== "") query.set(key, value);
  return `${location.pathname}?${query}`;
}

function show(view) {
  for (const tab of tabs()) {
    const selected = tab.dataset.tab === view;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== view;
  return runLoader(view);
}

// Shows `view`; with `push`, as a new history entry.
export function navigate(view, params = {}, push = true) {
  const url = viewUrl(view, params);
  if (push && url !== `${location.pathname}${location.search}`) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
  return show(view);
}
export const showCurrent = () => show(currentView());

window.addEventListener("popstate", showCurrent);
for (const tab of tabs()) {
  tab.addEventListener("click", () => navigate(tab.dataset.tab));
  tab.addEventListener("keydown", (e) => {
    const all = tabs();
    const i = all.indexOf(tab);
    const next = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: all.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    const target = all[(next + all.length) % all.length];
    target.focus();
    navigate(target.dataset.tab);
  });
}
// Links inside the page that name a view (`<a href="?view=…" data-view>`) navigate
// without a reload.
document.addEventListener("click", (e) => {
  const link = e.target.closest("a[data-view]");
  if (!link || e.ctrlKey || e.metaKey || e.shiftKey) return;
  e.preventDefault();
  const params = Object.fromEntries(new URL(link.href).searchParams);
  delete params.view;
  navigate(link.dataset.view, params);
});
