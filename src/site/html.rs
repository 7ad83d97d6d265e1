//! The pages as HTML, written by our own code: every string that came from
//! elsewhere (module paths, versions, the mirror's name and URL, what a
//! go.mod or the vulnerability database says) goes through [`esc`], and
//! free text from a peer through [`crate::shown`] first (one line, bounded,
//! no control or direction characters). Links are relative, so the pages
//! read the same from nginx, a bucket or `file://`.

use std::fmt::Write;

use crate::gomod;
use crate::state::{Addition, SiteCounts};

use super::chart::{self, ChartRun};
pub use super::escape::esc;

/// Free text a peer wrote (a retraction's rationale, an advisory's summary),
/// on one bounded line and escaped.
fn foreign(s: &str) -> String {
    esc(&crate::shown::text_max(
        &s.split_whitespace().collect::<Vec<_>>().join(" "),
        300,
    ))
}

/// `2024-01-02 15:04 UTC` from RFC 3339 (the text itself, escaped, if it is not one).
fn when(rfc3339: &str) -> String {
    match rfc3339.parse::<jiff::Timestamp>() {
        Ok(t) => format!(
            r#"<time datetime="{}">{}</time>"#,
            esc(&t.to_string()),
            t.strftime("%Y-%m-%d %H:%M UTC")
        ),
        Err(_) => esc(rfc3339),
    }
}

fn when_secs(secs: i64) -> String {
    when(&crate::clock::rfc3339(secs))
}

/// The opening of every page: `root` is the way back to `site/`.
fn head(out: &mut String, title: &str, root: &str, script: bool) {
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="gomirror {version}">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{root}style.css">
{script}</head>
<body>
"#,
        version = env!("CARGO_PKG_VERSION"),
        title = esc(title),
        script = if script {
            format!("<script src=\"{root}search.js\" defer></script>\n")
        } else {
            String::new()
        }
    );
}

fn nav(out: &mut String, mirror: &str, root: &str) {
    let _ = writeln!(
        out,
        r#"<nav aria-label="Site"><a href="{root}index.html">{}</a> · <a href="{root}search/index.html">all modules</a></nav>"#,
        esc(mirror)
    );
}

/// The relative link from a page `depth` directories below `site/` to the
/// module page of `module`.
pub fn module_href(root: &str, module: &str) -> String {
    match gomod::escape_path(module) {
        Ok(p) => format!("{root}m/{p}/@.html"),
        Err(_) => format!("{root}search/index.html"),
    }
}

/// What is known about a version, shown beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Covered by an entry of the mirrored vulnerability database.
    Vulnerable {
        id: String,
        fixed: Option<String>,
        summary: Option<String>,
    },
    /// Covered by a `retract` directive of the module's latest go.mod.
    Retracted { why: String },
    // Issue 27's policy adds its verdicts here (held, denied), computed
    // where `site::render_module` gathers the marks of each version.
}

/// A row of a module's page.
#[derive(Clone, Debug)]
pub struct VersionRow {
    pub version: String,
    pub time: Option<String>,
    pub graph_only: bool,
    pub marks: Vec<Mark>,
}

/// A module's page.
pub struct ModulePage<'a> {
    pub mirror: &'a str,
    pub module: &'a str,
    /// Newest first.
    pub versions: &'a [VersionRow],
    pub deprecated: Option<&'a str>,
    /// The mirror holds the vulnerability database: ids link to its entries.
    pub vulndb: bool,
}

/// The HTML of a module's page.
pub fn module_page(p: &ModulePage<'_>) -> String {
    let escaped = gomod::escape_path(p.module).unwrap_or_default();
    let depth = escaped.split('/').count() + 1;
    let root = "../".repeat(depth);
    let tree = format!("{root}../{escaped}/");
    let mut out = String::with_capacity(2048 + p.versions.len() * 300);
    head(
        &mut out,
        &format!("{} — {}", p.module, p.mirror),
        &root,
        false,
    );
    nav(&mut out, p.mirror, &root);
    let _ = writeln!(out, "<header><h1>{}</h1></header>\n<main>", esc(p.module));
    if let Some(d) = p.deprecated {
        let _ = writeln!(
            out,
            r#"<p class="notice"><strong>Deprecated.</strong> {}</p>"#,
            if d.trim().is_empty() {
                "Its latest go.mod says so.".to_string()
            } else {
                foreign(d)
            }
        );
    }
    let listed = p.versions.iter().filter(|v| !v.graph_only).count();
    if listed > 0 {
        let _ = writeln!(
            out,
            "<pre><code>go get {}@latest</code></pre>",
            esc(p.module)
        );
    }
    let _ = writeln!(
        out,
        r#"<p>Through the proxy protocol: <a href="{tree}@v/list">@v/list</a> · <a href="{tree}@latest">@latest</a></p>"#
    );
    let _ = writeln!(
        out,
        r#"<h2 id="versions">Versions</h2>
<table>
<caption>{} versions here{}. Times are the versions' own (their <code>.info</code>).</caption>
<thead><tr><th scope="col">Version</th><th scope="col">Time</th><th scope="col">Files</th><th scope="col">Notes</th></tr></thead>
<tbody>"#,
        p.versions.len(),
        if listed < p.versions.len() {
            format!(
                ", {} of them graph-only (their go.mod alone: what a build's requirement graph reads)",
                p.versions.len() - listed
            )
        } else {
            String::new()
        }
    );
    for v in p.versions {
        let ev = gomod::escape_version(&v.version).unwrap_or_default();
        let files = if v.graph_only {
            format!(r#"<a href="{tree}@v/{ev}.mod">mod</a> <a href="{tree}@v/{ev}.info">info</a>"#)
        } else {
            format!(
                r#"<a href="{tree}@v/{ev}.zip">zip</a> <a href="{tree}@v/{ev}.mod">mod</a> <a href="{tree}@v/{ev}.info">info</a>"#
            )
        };
        let mut notes = String::new();
        if v.graph_only {
            notes.push_str(r#"<span class="mark graph">graph-only</span>"#);
        }
        for m in &v.marks {
            match m {
                Mark::Vulnerable { id, fixed, summary } => {
                    let name = if p.vulndb {
                        format!(r#"<a href="{root}../vuln/ID/{0}.json">{0}</a>"#, esc(id))
                    } else {
                        esc(id)
                    };
                    let _ = write!(
                        notes,
                        r#"<span class="mark vuln">vulnerable: {name}{}</span>{}"#,
                        match fixed {
                            Some(f) => format!(", fixed in {}", esc(f)),
                            None => ", no fix".into(),
                        },
                        summary
                            .as_deref()
                            .map(|s| format!(" <span class=\"muted\">{}</span>", foreign(s)))
                            .unwrap_or_default()
                    );
                }
                Mark::Retracted { why } => {
                    let _ = write!(
                        notes,
                        r#"<span class="mark retracted">retracted{}</span>"#,
                        if why.trim().is_empty() {
                            String::new()
                        } else {
                            format!(": {}", foreign(why))
                        }
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            r#"<tr id="{id}"><th scope="row">{ver}</th><td>{time}</td><td>{files}</td><td>{notes}</td></tr>"#,
            id = esc(&format!("v-{}", v.version)),
            ver = esc(&v.version),
            time = v.time.as_deref().map(when).unwrap_or_else(|| "—".into()),
        );
    }
    out.push_str("</tbody>\n</table>\n</main>\n");
    footer(&mut out, &root, None);
    out
}

fn footer(out: &mut String, root: &str, extra: Option<&str>) {
    let _ = writeln!(
        out,
        r#"<footer><p>Written by gomirror {}{}. <a href="{root}index.html">Front page</a>.</p></footer>
</body>
</html>"#,
        env!("CARGO_PKG_VERSION"),
        extra.unwrap_or("")
    );
}

/// A shard's listing (the search without a script, and what the script reads).
pub fn shard_page(mirror: &str, prefix: &str, children: &[&str], modules: &[String]) -> String {
    let root = "../";
    let mut out = String::with_capacity(1024 + modules.len() * 90);
    let title = if prefix.is_empty() {
        format!("All modules — {mirror}")
    } else {
        format!("Modules named “{prefix}…” — {mirror}")
    };
    head(&mut out, &title, root, false);
    nav(&mut out, mirror, root);
    let _ = writeln!(
        out,
        "<header><h1>{}</h1></header>\n<main>",
        if prefix.is_empty() {
            "All modules".to_string()
        } else {
            format!("Modules named “{}…”", esc(prefix))
        }
    );
    let _ = writeln!(
        out,
        "<p class=\"lead\">Modules are filed by the last element of their path (before a <code>/vN</code> suffix), lowercased.</p>"
    );
    if !children.is_empty() {
        let _ = writeln!(
            out,
            "<h2 id=\"more\">Longer names</h2>\n<ul class=\"shards\">"
        );
        for c in children {
            let _ = writeln!(
                out,
                r#"<li><a href="t-{}.html">{}…</a></li>"#,
                crate::store::layout::encode_shard(c),
                esc(c)
            );
        }
        out.push_str("</ul>\n");
    }
    let _ = writeln!(
        out,
        "<h2 id=\"here\">{}</h2>\n<ul class=\"modules\">",
        match (modules.len(), children.is_empty()) {
            (0, _) => "No module filed here".to_string(),
            (n, true) => format!("{n} modules"),
            (n, false) => format!("{n} modules not under a longer name"),
        }
    );
    for m in modules {
        let _ = writeln!(
            out,
            r#"<li><a href="{}">{}</a></li>"#,
            esc(&module_href("../", m)),
            esc(m)
        );
    }
    out.push_str("</ul>\n</main>\n");
    footer(&mut out, root, None);
    out
}

/// Where the mirror's content comes from, for its front page.
#[derive(Clone, Debug)]
pub enum Source {
    /// A proxy list (credentials masked), and an index read up to a time.
    Proxy {
        list: String,
        cursor: Option<String>,
    },
    /// Another gomirror's change feed (URL masked).
    Follows { url: String },
    /// Bundles `gomirror export` wrote on another mirror.
    Bundles {
        from: String,
        sequence: u64,
        imported: i64,
    },
}

/// The front page.
pub struct FrontPage<'a> {
    pub mirror: &'a str,
    /// The base URL clients use (ends with `/`).
    pub url: &'a str,
    pub sumdb_name: &'a str,
    pub sumdb_key: &'a str,
    /// `sumdb.skip`, as GONOSUMDB takes it.
    pub sumdb_skip: &'a str,
    pub counts: &'a SiteCounts,
    /// The vulnerability database held: its `modified` and entries.
    pub vulndb: Option<(&'a str, i64)>,
    pub toolchain_platforms: &'a [String],
    pub source: &'a Source,
    /// Seconds behind the upstream when this page was written.
    pub lag: Option<i64>,
    /// When each command last succeeded.
    pub last_success: &'a [(String, Option<i64>)],
    pub written: i64,
    pub command: &'a str,
    pub additions: &'a [Addition],
    /// Oldest first.
    pub runs: &'a [ChartRun],
}

/// The HTML of the front page.
pub fn front_page(p: &FrontPage<'_>) -> String {
    let mut out = String::with_capacity(32 << 10);
    head(
        &mut out,
        &format!("{} — Go module mirror", p.mirror),
        "",
        true,
    );
    let url = p.url;
    let _ = writeln!(
        out,
        r#"<header><h1>{name}</h1>
<p class="lead">A Go module mirror: a GOPROXY at <code>{url}</code>, with the checksum database {sumdb} served beside it{vuln}.</p></header>
<main>"#,
        name = esc(p.mirror),
        url = esc(url),
        sumdb = esc(p.sumdb_name),
        vuln = if p.vulndb.is_some() {
            " and the Go vulnerability database"
        } else {
            ""
        },
    );

    // Search.
    let _ = writeln!(
        out,
        r#"<section aria-labelledby="find"><h2 id="find">Find a module</h2>
<form id="search" role="search" action="search/index.html" method="get" data-base="search/">
<label for="q">Module path, or the last part of it</label>
<input id="q" name="q" type="search" autocomplete="off" spellcheck="false" placeholder="e.g. cobra, gopkg.in/yaml.v3">
<button type="submit">Search</button>
</form>
<p id="status" role="status" aria-live="polite"></p>
<ul id="results" class="modules"></ul>
<p><a href="search/index.html">Browse every module by name</a> (works without JavaScript).</p>
</section>"#
    );

    // Setup.
    let sumdb_line = if p.sumdb_name == "sum.golang.org" {
        "go env -w GOSUMDB=sum.golang.org".to_string()
    } else {
        format!("go env -w GOSUMDB={}", p.sumdb_key)
    };
    let mut setup = format!(
        "go env -w GOPROXY={url}\n{sumdb_line}\n",
        url = url.trim_end_matches('/')
    );
    if p.sumdb_skip.is_empty() {
        setup.push_str("go env -w GOPRIVATE=corp.example.com/*   # your private modules: never asked of this mirror\n");
    } else {
        let _ = writeln!(setup, "go env -w GONOSUMDB={}", p.sumdb_skip);
    }
    let toolchains = p.counts.toolchains > 0;
    if toolchains {
        setup.push_str("go env -w GOTOOLCHAIN=auto\n");
    } else {
        setup.push_str("go env -w GOTOOLCHAIN=local\n");
    }
    if p.vulndb.is_some() {
        let _ = writeln!(setup, "govulncheck -db {}vuln ./...", url);
    }
    let _ = writeln!(
        out,
        r#"<section aria-labelledby="use"><h2 id="use">Use this mirror</h2>
<pre><code>{}</code></pre>
<ul>
<li><code>GOPROXY</code>: every module comes from here; with nothing after it, the go command asks no one else.</li>
<li><code>GOSUMDB</code>: every download is checked against the checksum database <code>{sumdb}</code>, which the go command reads through this mirror (<code>/sumdb/{sumdb}/</code>): no request leaves your network.</li>
<li>{private}</li>
<li><code>GOTOOLCHAIN</code>: {toolchain}</li>
{vuln}</ul>
</section>"#,
        esc(&setup),
        sumdb = esc(p.sumdb_name),
        private = if p.sumdb_skip.is_empty() {
            "<code>GOPRIVATE</code>: modules of your own, fetched directly from their repositories and never checked against the public checksum database.".to_string()
        } else {
            "<code>GONOSUMDB</code>: modules this mirror holds that the public checksum database does not know (<code>sumdb.skip</code>).".to_string()
        },
        toolchain = if toolchains {
            format!(
                "this mirror holds {} Go toolchain{}{}: a go.mod asking for a newer Go gets it from here.",
                p.counts.toolchains,
                if p.counts.toolchains == 1 { "" } else { "s" },
                if p.toolchain_platforms.is_empty() {
                    String::new()
                } else {
                    format!(" (for {})", esc(&p.toolchain_platforms.join(", ")))
                }
            )
        } else {
            "this mirror holds no Go toolchains: use the Go you have installed.".to_string()
        },
        vuln = match p.vulndb {
            Some((modified, _)) => format!(
                "<li><code>govulncheck -db</code>: the Go vulnerability database as of {}, served from <code>/vuln/</code>.</li>\n",
                when(modified)
            ),
            None => String::new(),
        }
    );

    // Contents.
    let c = p.counts;
    let _ = writeln!(
        out,
        r#"<section aria-labelledby="holds"><h2 id="holds">What it holds</h2>
<dl class="counts">
<dt>Modules</dt><dd>{}</dd>
<dt>Versions</dt><dd>{}</dd>
<dt>Size</dt><dd>{}</dd>
<dt>Go toolchains</dt><dd>{}</dd>
<dt>Vulnerability database</dt><dd>{}</dd>
</dl>
</section>"#,
        c.modules,
        c.versions,
        esc(&crate::report::bytes(c.bytes.max(0) as u64)),
        c.toolchains,
        match p.vulndb {
            Some((m, n)) => format!("{n} entries, modified {}", when(m)),
            None => "not mirrored".into(),
        }
    );

    // Freshness.
    let source = match p.source {
        Source::Proxy { list, cursor } => format!(
            "<p>Versions come from <code>{}</code>{}.</p>",
            esc(list),
            match cursor {
                Some(c) => format!(", and the module index is read up to {}", when(c)),
                None => String::new(),
            }
        ),
        Source::Follows { url } => format!(
            "<p>This mirror follows the change feed of the mirror at <code>{}</code>.</p>",
            esc(url)
        ),
        Source::Bundles {
            from,
            sequence,
            imported,
        } => format!(
            "<p>This mirror is fed by bundles exported by <code>{}</code>: bundle {sequence} was imported {}.</p>",
            esc(from),
            when_secs(*imported)
        ),
    };
    let mut last = String::new();
    for (command, at) in p.last_success {
        let _ = writeln!(
            last,
            "<dt>Last successful {}</dt><dd>{}</dd>",
            esc(command),
            at.map(when_secs)
                .unwrap_or_else(|| "none before this one".into())
        );
    }
    let _ = writeln!(
        out,
        r#"<section aria-labelledby="fresh"><h2 id="fresh">How fresh it is</h2>
{source}
<dl class="counts">
<dt>Pages written</dt><dd>{written} (by <code>gomirror {command}</code>)</dd>
<dt>Behind the upstream</dt><dd>{lag}</dd>
{last}</dl>"#,
        written = when_secs(p.written),
        command = esc(p.command),
        lag = match p.lag {
            Some(l) => format!(
                "{} when these pages were written",
                esc(&chart::span(l as f64))
            ),
            None => "not measured for this upstream".into(),
        },
    );
    if let Some(svg) = chart::svg(p.runs) {
        let _ = writeln!(
            out,
            "<figure>\n{svg}<figcaption>The last {} runs, oldest on the left; red: a run that did not succeed.</figcaption>\n</figure>",
            p.runs.len()
        );
        out.push_str("<details><summary>The runs as a table</summary>\n<table>\n<thead><tr><th scope=\"col\">Run</th><th scope=\"col\">Started</th><th scope=\"col\">Published</th><th scope=\"col\">Duration</th><th scope=\"col\">Behind</th><th scope=\"col\">Outcome</th></tr></thead>\n<tbody>\n");
        for r in p.runs.iter().rev() {
            let _ = writeln!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.command),
                when_secs(r.started),
                r.published,
                esc(&chart::span(r.seconds)),
                r.lag
                    .map(|l| esc(&chart::span(l as f64)))
                    .unwrap_or_else(|| "—".into()),
                if r.ok { "ok" } else { "did not succeed" }
            );
        }
        out.push_str("</tbody>\n</table>\n</details>\n");
    }
    out.push_str("</section>\n");

    // Recent additions.
    let _ = writeln!(
        out,
        r#"<section aria-labelledby="new"><h2 id="new">Recently added</h2>"#
    );
    if p.additions.is_empty() {
        out.push_str("<p>Nothing yet.</p>\n");
    } else {
        out.push_str("<table>\n<thead><tr><th scope=\"col\">Module</th><th scope=\"col\">Version</th><th scope=\"col\">Added</th></tr></thead>\n<tbody>\n");
        for a in p.additions {
            let _ = writeln!(
                out,
                r#"<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td></tr>"#,
                esc(&module_href("", &a.path)),
                esc(&a.path),
                esc(&a.version),
                when(&a.time)
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n</main>\n");
    let trace = format!(
        " · <a href=\"../trace/{}.json\">trace file</a> · <a href=\"../feed/latest\">change feed</a>",
        esc(p.mirror)
    );
    footer(&mut out, "", Some(&trace));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_text_is_escaped_and_bounded() {
        assert_eq!(
            esc("<script>alert(\"x\")</script>&'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        let long = "a\u{202e}b\n".repeat(200);
        let f = foreign(&long);
        assert!(!f.contains('\u{202e}') && !f.contains('\n'), "{f}");
        assert!(f.chars().count() < 1000, "{}", f.len());
    }

    #[test]
    fn a_module_page_lists_versions_with_links_and_marks() {
        let versions = [
            VersionRow {
                version: "v1.2.0".into(),
                time: Some("2024-01-02T15:04:05Z".into()),
                graph_only: false,
                marks: vec![Mark::Vulnerable {
                    id: "GO-2024-0001".into(),
                    fixed: Some("v1.2.1".into()),
                    summary: Some("<b>bad</b>".into()),
                }],
            },
            VersionRow {
                version: "v1.0.0-RC1".into(),
                time: None,
                graph_only: true,
                marks: vec![Mark::Retracted {
                    why: "<oops>".into(),
                }],
            },
        ];
        let html = module_page(&ModulePage {
            mirror: "m<1>",
            module: "github.com/Azure/x",
            versions: &versions,
            deprecated: Some("use y"),
            vulndb: true,
        });
        assert!(html.contains("<title>github.com/Azure/x — m&lt;1&gt;</title>"));
        assert!(html.contains(r#"href="../../../../../github.com/!azure/x/@v/v1.2.0.zip""#));
        assert!(html.contains(r#"href="../../../../../github.com/!azure/x/@v/v1.0.0-!r!c1.mod""#));
        assert!(
            !html.contains("v1.0.0-!r!c1.zip"),
            "a graph-only version has no zip"
        );
        assert!(html.contains(r#"href="../../../../style.css""#));
        assert!(html.contains(r#"href="../../../../../vuln/ID/GO-2024-0001.json""#));
        assert!(html.contains("&lt;b&gt;bad&lt;/b&gt;"));
        assert!(html.contains("retracted: &lt;oops&gt;"));
        assert!(html.contains("graph-only"));
        assert!(html.contains("Deprecated.</strong> use y"));
        assert!(html.contains("2024-01-02 15:04 UTC"));
    }
}
