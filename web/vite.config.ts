import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// In development (`npm run dev` / `npm run preview`) the API is proxied to a running cdx server:
// CDX_DEV_SERVER=http://127.0.0.1:3000 by default. In production the binary serves web/dist itself.
const target = process.env.CDX_DEV_SERVER || "http://127.0.0.1:3000";
const proxy = Object.fromEntries(
  ["/api", "/oauth", "/.well-known", "/health", "/metrics", "/openapi.json"].map((p) => [p, { target, changeOrigin: false }]),
);

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false, target: "es2020", reportCompressedSize: true },
  server: { proxy },
  preview: { proxy },
});
