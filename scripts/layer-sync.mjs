#!/usr/bin/env node
// Runs the `layer-sync` CLI from source through tsx, without building it (for development). The package's
// `bin` is the bundle, dist/layer-sync.mjs (`npm run build:cli`), which plain Node runs.
import { register } from "tsx/esm/api";

register();
await import("./cli-main.ts");
