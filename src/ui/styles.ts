/** The one stylesheet, served from /assets/app.css with a long cache lifetime. */
export const stylesheet = `
:root{--bg:#f6f7f9;--card:#fff;--text:#16181d;--muted:#545b66;--line:#dde1e7;--accent:#2f56d6;--accent-ink:#fff;
--ok:#17663a;--ok-bg:#e4f4ea;--warn:#8a4b00;--warn-bg:#fff3df;--err:#a4161a;--err-bg:#fde8e8;--radius:10px;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--text);background:var(--bg)}
*{box-sizing:border-box}body{margin:0;line-height:1.5}
a{color:var(--accent)}a:focus-visible,button:focus-visible,input:focus-visible{outline:3px solid #8aa4ff;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem;z-index:9}
.top{display:flex;align-items:center;justify-content:space-between;padding:.75rem 1.5rem;background:#fff;border-bottom:1px solid var(--line)}
.top nav{display:flex;gap:1rem;align-items:center}.brand{font-weight:700;text-decoration:none;color:var(--text);font-size:1.1rem}
.brand span{color:var(--accent)}.who{color:var(--muted)}
main{max-width:960px;margin:0 auto;padding:1.5rem}
h1{font-size:1.6rem;margin:.5rem 0 1rem}h2{font-size:1.15rem;margin:1.5rem 0 .75rem}
.lede{color:var(--muted);margin-top:-.5rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:1rem;padding:0;list-style:none}
.card{background:var(--card);border:1px solid var(--line);border-radius:var(--radius);padding:1rem 1.1rem;display:flex;flex-direction:column;gap:.5rem}
.card h3{margin:0;font-size:1.05rem}.card p{margin:0;color:var(--muted)}
.kind{font-size:.75rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.status{display:inline-block;font-size:.85rem;padding:.1rem .55rem;border-radius:999px;width:fit-content}
.status-active{background:var(--ok-bg);color:var(--ok)}.status-needs_reauth{background:var(--warn-bg);color:var(--warn)}
.status-not_connected{background:#eef0f3;color:var(--muted)}
.actions{display:flex;gap:.5rem;margin-top:auto;flex-wrap:wrap}
button,.button{font:inherit;border-radius:8px;border:1px solid var(--accent);background:var(--accent);color:var(--accent-ink);padding:.45rem .9rem;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary,.button.secondary{background:#fff;color:var(--accent)}button.danger{background:#fff;color:var(--err);border-color:#e3a5a7}
button.link{background:none;border:none;color:var(--accent);padding:0;text-decoration:underline}
form.inline{display:inline}
.flash{padding:.75rem 1rem;border-radius:var(--radius);margin:0 0 1rem}.flash-success{background:var(--ok-bg);color:var(--ok)}
.flash-error{background:var(--err-bg);color:var(--err)}.flash-info{background:#e8eefc;color:#1d3c99}
.banner{background:var(--warn-bg);color:var(--warn);border:1px solid #f1d1a6;border-radius:var(--radius);padding:.75rem 1rem;margin-bottom:1rem;display:flex;gap:1rem;align-items:center;justify-content:space-between}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}input[type=text]{font:inherit;padding:.5rem .6rem;border:1px solid #9aa3af;border-radius:8px;width:100%;max-width:360px}
.narrow{max-width:440px}.check{display:flex;gap:.5rem;align-items:center;font-weight:400}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid var(--line);border-radius:var(--radius);overflow:hidden}
th,td{text-align:left;padding:.5rem .75rem;border-bottom:1px solid var(--line);font-size:.92rem}th{background:#f0f2f5}
.problem{background:var(--warn-bg);color:var(--warn);border-radius:var(--radius);padding:.5rem .75rem;font-size:.9em;margin:.5rem 0}
.muted{color:var(--muted)}code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em}
.tabs{display:flex;gap:.25rem;flex-wrap:wrap;border-bottom:1px solid var(--line);margin-bottom:1rem}
.tabs a{padding:.4rem .8rem;text-decoration:none;border-radius:8px 8px 0 0}.tabs a[aria-current=page]{background:#fff;border:1px solid var(--line);border-bottom-color:#fff;margin-bottom:-1px;color:var(--text)}
.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end;margin-bottom:1rem}.filters label{margin:0}
select,input[type=password]{font:inherit;padding:.45rem .5rem;border:1px solid #9aa3af;border-radius:8px;max-width:100%}
input[type=password]{width:100%;max-width:360px}fieldset{border:1px solid var(--line);border-radius:8px;margin:.75rem 0}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0 0 1rem}.facts dt{font-weight:600}.facts dd{margin:0;overflow-wrap:anywhere}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}td.actions{display:table-cell}td.actions>*{margin:.15rem .25rem .15rem 0}
.field-error{color:var(--err);margin:.25rem 0 0;font-size:.9em}[aria-invalid=true]{border-color:var(--err)}.hint{margin:0 0 .25rem;font-size:.9em;font-weight:400}
.facts-note{background:#eef0f3;border-radius:var(--radius);padding:.5rem .75rem}
@media (max-width:600px){main{padding:1rem .75rem}th,td{padding:.4rem .5rem}}
`;
