// A minimal Lambda custom runtime loop for the Node references (the Runtime API over node:http
// with one keep-alive connection): the same Runtime API stand-in drives them and our bootstraps.
// https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html

const http = require("node:http");

exports.serve = async function serve(handler) {
  const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const base = "/2018-06-01/runtime";
  const request = (method, path, body) =>
    new Promise((resolve, reject) => {
      const headers = body ? { "content-type": "application/json" } : {};
      const req = http.request({ host, port, method, path, agent, headers }, (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString() }));
      });
      req.on("error", reject);
      req.end(body);
    });
  for (;;) {
    const next = await request("GET", `${base}/invocation/next`);
    const id = next.headers["lambda-runtime-aws-request-id"];
    try {
      const result = await handler(JSON.parse(next.body));
      await request("POST", `${base}/invocation/${id}/response`, JSON.stringify(result));
    } catch (error) {
      await request("POST", `${base}/invocation/${id}/error`, JSON.stringify({ errorType: error.name, errorMessage: error.message }));
    }
  }
};
