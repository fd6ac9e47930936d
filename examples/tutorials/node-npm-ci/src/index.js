// The tutorial's Express app (express from npm's registry, pinned by package-lock.json), on
// port 3000.
//
// `node src/index.js --self-test` starts the server on a free loopback port, asks it once,
// prints the answer and exits, so a script can check the image without a network. The answer
// says which express the lockfile gave and whether the development dependencies (nodemon)
// were left out, as `npm ci --only=production` should.
"use strict";

const http = require("http");
const express = require("express");

function installed(name) {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}

const app = express();
app.get("/", (request, response) => {
  response.json({
    message: "Hello from npm ci on a distroless Node.js image",
    node: process.version,
    express: require("express/package.json").version,
    from: require.resolve("express"),
    nodemon: installed("nodemon") ? "installed" : "omitted",
  });
});

if (process.argv.includes("--self-test")) {
  const server = app.listen(0, "127.0.0.1", () => {
    http.get(`http://127.0.0.1:${server.address().port}/`, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => (body += chunk));
      response.on("end", () => {
        console.log(body);
        server.close();
      });
    });
  });
} else {
  app.listen(3000, () => console.log("listening on port 3000"));
}
