// Generates src/api/schema.d.ts from the server's OpenAPI description ($CDX_OPENAPI, default ./openapi.json),
// so every API call in the dashboard is type-checked against what the server says it serves.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, renameSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const spec = path.resolve(process.env.CDX_OPENAPI || path.join(root, "openapi.json"));
if (!existsSync(spec)) {
  console.error(`gen-api: ${spec} not found. Set CDX_OPENAPI, or from a running server:\n` +
    `  curl -s localhost:3000/openapi.json > web/openapi.json`);
  process.exit(1);
}
const bin = path.join(root, "node_modules", ".bin", "openapi-typescript");
// Properties with a default stay optional in request bodies (--default-non-nullable=false). The file is
// replaced only when it changes, so an unchanged API does not make the build think web/src changed.
const out = path.join(root, "src", "api", "schema.d.ts");
const tmp = out + ".new";
execFileSync(bin, [spec, "--default-non-nullable=false", "-o", tmp], { stdio: ["ignore", "ignore", "inherit"] });
if (existsSync(out) && readFileSync(out, "utf8") === readFileSync(tmp, "utf8")) rmSync(tmp);
else renameSync(tmp, out);
