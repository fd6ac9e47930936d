// The site's build: README.md rendered by marked into dist/index.html.
"use strict";

const fs = require("fs");
const path = require("path");
const { marked } = require("marked");

function render(markdown) {
  return `<!doctype html>\n<meta charset="utf-8">\n${marked.parse(markdown)}`;
}

if (require.main === module) {
  const root = path.join(__dirname, "..");
  fs.mkdirSync(path.join(root, "dist"), { recursive: true });
  fs.writeFileSync(
    path.join(root, "dist", "index.html"),
    render(fs.readFileSync(path.join(root, "README.md"), "utf8")),
  );
  console.log("built dist/index.html");
}

module.exports = { render };
