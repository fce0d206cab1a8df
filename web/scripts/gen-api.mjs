// Generates src/api/schema.d.ts from the server's OpenAPI description ($CDX_OPENAPI, default ./openapi.json),
// so every API call in the dashboard is type-checked against what the server says it serves.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
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
execFileSync(bin, [spec, "--default-non-nullable=false", "-o", path.join(root, "src", "api", "schema.d.ts")], { stdio: "inherit" });
