"use strict";

const assert = require("node:assert");
const test = require("node:test");
const { render } = require("../src/build.js");

test("the title becomes the page's heading", () => {
  assert.match(render("# My App\n"), /<h1>My App<\/h1>/);
});

test("the page declares its encoding", () => {
  assert.match(render("text"), /<meta charset="utf-8">/);
});
