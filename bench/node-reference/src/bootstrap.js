// The $connect reference's entry point (dist/bootstrap.cjs).
require("./runtime.js").serve(require("./handler.js").handler);
