// The tutorial's Express app (express from npm's registry), on port 3000.
//
// `node index.js --self-test` starts the server on a free loopback port, asks it once, prints
// the answer and exits, so a script can check the image without a network. The answer says
// who runs the app, who owns its files and whether the development dependencies (nodemon)
// were left out, as `npm install --omit=dev` should.
"use strict";

const fs = require("fs");
const http = require("http");
const path = require("path");
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
  const modules = path.join(__dirname, "node_modules");
  response.json({
    message: "Hello from a distroless Node.js image, as nonroot",
    node: process.version,
    env: process.env.NODE_ENV,
    uid: process.getuid(),
    gid: process.getgid(),
    owner: {
      "index.js": fs.statSync(__filename).uid,
      node_modules: fs.statSync(modules).uid,
      express: fs.statSync(path.join(modules, "express", "package.json")).uid,
    },
    express: require("express/package.json").version,
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
