//! The pages' stylesheet and script, written by gomirror beside them
//! (`site/style.css`, `site/search.js`): no framework, nothing fetched from
//! elsewhere. Every page reads without the script; the script only adds the
//! search box's results.

/// `site/style.css`. Colours keep a contrast of at least 4.5:1 (WCAG AA)
/// against their backgrounds.
pub const STYLE: &str = r#"/* gomirror's pages */
:root { color-scheme: light; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a; background: #ffffff; margin: 0; }
header, main, footer, nav { max-width: 62rem; margin: 0 auto; padding: 0 1rem; }
header { padding-top: 1.5rem; }
h1 { font-size: 1.8rem; margin: 0.5rem 0; overflow-wrap: anywhere; }
h2 { font-size: 1.3rem; margin: 2rem 0 0.5rem; border-bottom: 1px solid #c8c8c8; }
a { color: #0b4f9c; }
a:visited { color: #5b2a86; }
a:focus-visible, input:focus-visible, button:focus-visible, summary:focus-visible { outline: 3px solid #b35c00; outline-offset: 2px; }
code, pre { font: 0.95em/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, monospace; }
pre { background: #f3f4f6; border: 1px solid #c8c8c8; padding: 0.75rem; overflow-x: auto; }
.lead { color: #3d3d3d; }
.muted { color: #555555; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid #dcdcdc; vertical-align: top; }
th[scope="row"] { font-weight: normal; font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; white-space: nowrap; }
td time { white-space: nowrap; }
caption { text-align: left; color: #3d3d3d; padding: 0.3rem 0; }
dl.counts { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; }
dl.counts dt { font-weight: 600; }
dl.counts dd { margin: 0; }
form#search { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; }
form#search label { width: 100%; font-weight: 600; }
input[type="search"] { flex: 1 1 20rem; font-size: 1rem; padding: 0.4rem; border: 1px solid #6b6b6b; border-radius: 3px; }
button { font-size: 1rem; padding: 0.4rem 1rem; background: #0b4f9c; color: #ffffff; border: 0; border-radius: 3px; cursor: pointer; }
ul.modules { list-style: none; padding: 0; columns: 22rem auto; }
ul.modules li { padding: 0.1rem 0; overflow-wrap: anywhere; font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; }
ul.shards { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.3rem 0.8rem; }
.mark { display: inline-block; padding: 0 0.4rem; margin: 0 0.3rem 0.2rem 0; border-radius: 3px; font-size: 0.9em; }
.mark.vuln { background: #fde7e7; color: #8a1111; border: 1px solid #8a1111; }
.mark.retracted { background: #fff1d6; color: #6b3f00; border: 1px solid #6b3f00; }
.mark.deprecated { background: #ececec; color: #333333; border: 1px solid #555555; }
.mark.graph { background: #e6f0fb; color: #0b3d75; border: 1px solid #0b3d75; }
.notice { border-left: 4px solid #6b3f00; background: #fff8e8; padding: 0.5rem 0.75rem; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; }
footer { margin-top: 3rem; padding-bottom: 2rem; color: #555555; font-size: 0.9rem; }
nav { padding-top: 1rem; }
"#;

/// `site/search.js`: finds modules in the shards under `search/`. It keeps
/// the rules of [`super::search`] (the term, the shard file names) and
/// builds every node with the DOM (no markup from data).
pub const SCRIPT: &str = r#"// gomirror's search: reads the static shards under search/ (docs/site.md).
(function () {
  "use strict";
  var form = document.getElementById("search");
  if (!form) { return; }
  var input = document.getElementById("q");
  var status = document.getElementById("status");
  var results = document.getElementById("results");
  var base = new URL(form.getAttribute("data-base"), document.baseURI);
  var shards = null;
  var cache = {};
  var timer = null;
  var asked = 0;

  function term(q) {
    var parts = q.split("/").filter(function (p) { return p !== ""; });
    if (parts.length === 0) { return ""; }
    var last = parts[parts.length - 1];
    if (/^v[0-9]+$/.test(last) && parts.length > 1) { last = parts[parts.length - 2]; }
    return last.toLowerCase();
  }
  function encode(p) {
    var bytes = new TextEncoder().encode(p);
    var s = "";
    for (var i = 0; i < bytes.length; i++) {
      var b = bytes[i];
      if ((b >= 97 && b <= 122) || (b >= 48 && b <= 57)) { s += String.fromCharCode(b); }
      else { s += "_" + (b < 16 ? "0" : "") + b.toString(16); }
    }
    return s;
  }
  function shardURL(p) {
    return new URL(p === "" ? "index.html" : "t-" + encode(p) + ".html", base);
  }
  function say(text, link) {
    status.textContent = text;
    if (link) {
      status.appendChild(document.createTextNode(" "));
      var a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      status.appendChild(a);
    }
  }
  function getShards() {
    if (shards) { return Promise.resolve(shards); }
    return fetch(new URL("shards.json", base)).then(function (r) {
      if (!r.ok) { throw new Error("shards.json: " + r.status); }
      return r.json();
    }).then(function (list) { shards = new Set(list); return shards; });
  }
  function getShard(p) {
    if (cache[p]) { return Promise.resolve(cache[p]); }
    var url = shardURL(p);
    return fetch(url).then(function (r) {
      if (!r.ok) { throw new Error(url.pathname + ": " + r.status); }
      return r.text();
    }).then(function (text) {
      var doc = new DOMParser().parseFromString(text, "text/html");
      var list = [];
      doc.querySelectorAll("ul.modules a").forEach(function (a) {
        list.push({ path: a.textContent, href: new URL(a.getAttribute("href"), url).href });
      });
      cache[p] = list;
      return list;
    });
  }
  function search(q) {
    var n = ++asked;
    q = q.trim();
    var t = term(q);
    while (results.firstChild) { results.removeChild(results.firstChild); }
    if (t === "") { say(""); return; }
    var lower = q.toLowerCase();
    getShards().then(function (all) {
      var p = t;
      while (p.length > 0 && !all.has(p)) { p = p.slice(0, -1); }
      var deeper = false;
      all.forEach(function (s) { if (s.length > p.length && s.indexOf(t) === 0) { deeper = true; } });
      return getShard(p).then(function (list) { return { list: list, shard: p, deeper: deeper }; });
    }).then(function (found) {
      if (n !== asked) { return; }
      var hits = found.list.filter(function (m) {
        var l = m.path.toLowerCase();
        return term(l).indexOf(t) === 0 && l.indexOf(lower) !== -1;
      });
      hits.sort(function (a, b) {
        var ea = term(a.path) === t ? 0 : 1, eb = term(b.path) === t ? 0 : 1;
        return ea - eb || a.path.length - b.path.length || (a.path < b.path ? -1 : 1);
      });
      var shown = hits.slice(0, 100);
      shown.forEach(function (m) {
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = m.href;
        a.textContent = m.path;
        li.appendChild(a);
        results.appendChild(li);
      });
      var text = hits.length === 0 ? "No module named \u201c" + t + "\u201d here." :
        hits.length + (hits.length === 1 ? " module" : " modules") +
        (shown.length < hits.length ? " (the first " + shown.length + " shown)" : "") + ".";
      if (found.deeper) {
        say(text + " More modules start with \u201c" + t + "\u201d:", { href: shardURL(found.shard).href, text: "browse them" });
      } else {
        say(text);
      }
    }).catch(function () {
      if (n !== asked) { return; }
      say("The search index cannot be read; browse the list instead:", { href: shardURL("").href, text: "all modules" });
    });
  }
  if (location.protocol === "file:") {
    // A browser does not let a page read files beside it: the lists work, the box does not.
    say("Searching needs the pages served over HTTP; browse the lists instead:", { href: shardURL("").href, text: "all modules" });
    return;
  }
  form.addEventListener("submit", function (e) { e.preventDefault(); search(input.value); });
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { search(input.value); }, 150);
  });
  var q = new URLSearchParams(location.search).get("q");
  if (q) { input.value = q; search(q); }
})();
"#;
