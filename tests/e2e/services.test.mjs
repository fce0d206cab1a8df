// The Services page in a constellation (`cdx up`, each module its own process): a service that stops
// answering turns red on the page within 3 s, from the live feed, and green again when it is back.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { after, before, test } from "node:test";
import { MODULE_PORT, SCREENSHOTS, startHarness } from "./harness.mjs";

let h;
before(async () => {
  h = await startHarness({ topology: "constellation" });
  console.log(`# constellation: dashboard at ${h.baseUrl} (${h.mode})`);
});
after(async () => h?.stop());

function servicePid(name) {
  const out = execFileSync("pgrep", ["-f", "--", `--module ${name} --port ${h.port + MODULE_PORT[name]}`], { encoding: "utf8" }).trim().split(/\s+/);
  assert.equal(out.length, 1, `one ${name} process: ${out}`);
  return out[0];
}

// The bar: 3 s. Core checks each service every second with a 1 s probe timeout
// (src/app/platform.cpp), so a service that hangs right after a check is seen down about 2 s later.
const DOWN_MS = Number(process.env.CDX_E2E_DOWN_MS ?? 3000);

test(`a hung service turns red within ${DOWN_MS / 1000} s and green again`, async () => {
  const context = await h.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(h.baseUrl + "/login");
  await page.getByLabel("the operator").check();
  await page.getByLabel("Username").fill("test");
  await page.getByLabel("Password").fill("test123");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Services", exact: true }).click();
  const crm = page.locator('[data-service="crm"]');
  await page.locator('[data-service="crm"][data-status="up"]').waitFor({ timeout: 10000 });
  const pid = servicePid("crm");
  // Stopped, not killed: `cdx up` restarts a killed service within ~250 ms, often between two checks.
  execFileSync("kill", ["-STOP", pid]);
  const t0 = Date.now();
  try {
    await page.locator('[data-service="crm"][data-status="down"]').waitFor({ timeout: DOWN_MS });
    const ms = Date.now() - t0;
    console.log(`# services: crm red on the page ${ms} ms after it stopped answering`);
    await page.screenshot({ path: path.join(SCREENSHOTS, "operator-services-down.png"), fullPage: true });
  } finally {
    execFileSync("kill", ["-CONT", pid]);
  }
  const t1 = Date.now();
  await page.locator('[data-service="crm"][data-status="up"]').waitFor({ timeout: 15000 });
  console.log(`# services: crm green again ${Date.now() - t1} ms after it resumed`);
  assert.equal(await crm.getAttribute("data-status"), "up");
  assert.deepEqual(errors, []);
  await context.close();
});
