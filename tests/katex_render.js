// Render formulas with KaTeX: reads [{"tex": "...", "display": true}, ...] as JSON on stdin and
// writes [{"html": "..."} or {"error": "..."}, ...] on stdout. throwOnError: any formula KaTeX
// cannot typeset is an error, never red text in the page. KATEX_DIR names the folder that holds
// node_modules/katex (npm install --prefix .ci/katex, as .ci/run does).
const path = require("path");
const katex = require(path.resolve(process.env.KATEX_DIR, "node_modules", "katex"));
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const results = JSON.parse(input).map(({ tex, display }) => {
    try {
      return { html: katex.renderToString(tex, { displayMode: display, throwOnError: true, strict: "error" }) };
    } catch (error) {
      return { error: String(error.message || error) };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
