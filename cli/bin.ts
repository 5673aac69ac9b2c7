// The `crane` command's first file (dist/cli/crane.js): it checks Node's version before the CLI
// is loaded. The CLI's own module could not say it: its imports are linked before any of its code
// runs, so an old Node fails on one it lacks (node:util's parseArgs before 18.3) with a
// SyntaxError, and one without the global WebSocket (before 22) only once a run is followed.
// Built without bundling, in syntax any Node since 14 reads.
const major = Number(process.versions.node.split(".")[0]);
if (major < 22) {
  process.stderr.write(`crane: needs Node.js 22 or newer (this is ${process.version})\n`);
  process.exitCode = 1;
} else {
  // A specifier kept out of the bundler's sight: the CLI is a file of its own, loaded only here.
  const cli = "./main.js";
  import(cli);
}
