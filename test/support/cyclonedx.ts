/**
 * Validates CycloneDX 1.5 JSON documents against the official schema vendored in
 * test/fixtures/cyclonedx/ (with the SPDX licence and JSF signature schemas it references).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";

const DIR = join(import.meta.dirname, "../fixtures/cyclonedx");
const load = (file: string): Record<string, unknown> => JSON.parse(readFileSync(join(DIR, file), "utf8"));

let validate: ((doc: unknown) => string[]) | undefined;

/** The schema errors of `doc` as CycloneDX 1.5 JSON (empty when valid). */
export function cycloneDx15Errors(doc: unknown): string[] {
  if (validate === undefined) {
    const ajv = new Ajv({ strict: false, allErrors: true });
    addFormats.default(ajv);
    // formats ajv-formats does not define; layer-sync's SBOMs hold neither URLs nor e-mail addresses
    ajv.addFormat("iri-reference", true);
    ajv.addFormat("idn-email", true);
    ajv.addSchema(load("spdx.schema.json"));
    ajv.addSchema(load("jsf-0.82.schema.json"));
    const check = ajv.compile(load("bom-1.5.schema.json"));
    validate = (d) => (check(d) ? [] : (check.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""}`));
  }
  return validate(doc);
}
