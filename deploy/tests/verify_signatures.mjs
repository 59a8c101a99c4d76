// Verify recorded webhook requests with Node libraries that are not
// Hookline's: @octokit/webhooks-methods (GitHub's own) for
// X-Hub-Signature-256, given the secret string as the API handed it out,
// and standardwebhooks (npm) for webhook-signature.
//
//     node verify_signatures.mjs DUMP SECRETS
//
// DUMP and SECRETS as verify_signatures.py takes them. GitHub libraries
// take the payload as a string: a gzipped request is checked with
// standardwebhooks on the decompressed JSON only (docs/receiving.md). A
// tampered copy must fail. Exit 1 with every problem listed.
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { verify } from "@octokit/webhooks-methods";
import { Webhook } from "standardwebhooks";

const [dump, secretsFile] = process.argv.slice(2);
const secrets = JSON.parse(readFileSync(secretsFile, "utf8"));
const problems = [];
let checked = 0, github = 0;
for (const line of readFileSync(dump, "utf8").split("\n").filter(Boolean)) {
  const req = JSON.parse(line);
  const body = Buffer.from(req.body, "base64");
  const h = req.headers;
  const secret = Object.entries(secrets).find(([p]) => req.path.startsWith(p))?.[1];
  if (!secret) {
    problems.push(`${req.path}: no secret for this path`);
    continue;
  }
  const gzipped = h["content-encoding"] === "gzip";
  const json = gzipped ? gunzipSync(body).toString("utf8") : body.toString("utf8");
  if (!gzipped) {
    github++;
    if (!(await verify(secret, json, h["x-hub-signature-256"]))) {
      problems.push(`${req.path} ${h["webhook-id"]}: @octokit/webhooks-methods did not verify X-Hub-Signature-256`);
    }
    if (await verify(secret, json + " ", h["x-hub-signature-256"])) {
      problems.push(`${req.path}: a tampered body verified with @octokit/webhooks-methods`);
    }
  }
  // The npm library takes the key without its prefix, as docs/receiving.md shows.
  const wh = new Webhook(secret.replace(/^whsec_/, ""));
  try {
    wh.verify(json, h);
  } catch (e) {
    problems.push(`${req.path} ${h["webhook-id"]}: standardwebhooks: ${e.message}`);
  }
  checked++;
}
for (const p of problems) console.error("  -", p);
console.error(`node: ${checked} requests checked (${github} with @octokit/webhooks-methods), ${problems.length} problems`);
process.exit(problems.length || !checked || !github ? 1 : 0);
