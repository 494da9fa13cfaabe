// What Envoy's C++ checks of a bootstrap that reads its TLS material through SDS from files
// (beyond the protos): every SdsSecretConfig names a rendered SDS file by path, watched in the
// output directory; that file holds exactly the secret of that name and kind; the node has an
// id and cluster (else "TlsCertificateSdsApi: node 'id' and 'cluster' are required"); no
// certificate, key or CA is named in the bootstrap itself (read once, never again).
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import type { Rendered } from '../../src/render/index.ts';
import type { EnvoyValidator } from './envoy-validator.ts';

type Obj = Record<string, any>;

export interface SdsRef {
  /** JSON path of the SdsSecretConfig in the bootstrap. */
  at: string;
  kind: 'tls_certificate' | 'validation_context';
  config: Obj;
}

/** Every SdsSecretConfig in a bootstrap, with the kind of secret it must deliver. */
export function sdsRefs(node: unknown, at = '$', out: SdsRef[] = []): SdsRef[] {
  if (Array.isArray(node)) node.forEach((v, i) => sdsRefs(v, `${at}[${i}]`, out));
  else if (node !== null && typeof node === 'object') {
    for (const [k, v] of Object.entries(node as Obj)) {
      if (k === 'tls_certificate_sds_secret_configs') (v as Obj[]).forEach((c, i) => out.push({ at: `${at}.${k}[${i}]`, kind: 'tls_certificate', config: c }));
      else if (k === 'validation_context_sds_secret_config') out.push({ at: `${at}.${k}`, kind: 'validation_context', config: v as Obj });
      else sdsRefs(v, `${at}.${k}`, out);
    }
  }
  return out;
}

/**
 * Checks the rendered bootstrap (files[0]) and its SDS files together, and returns each secret
 * by name (the Secret resource of its file) for the caller's own assertions.
 */
export function checkSds(v: EnvoyValidator, rendered: Rendered, outDir: string): Record<string, Obj> {
  const [config, ...rest] = rendered.files;
  assert.equal(config!.name, 'envoy.yaml');
  const bootstrap = v.parseText(config!.content, 'envoy.yaml') as Obj;
  assert.ok(bootstrap.node?.id && bootstrap.node?.cluster, 'SDS needs node.id and node.cluster');
  const text = JSON.stringify(bootstrap);
  for (const word of ['"filename"', '"tls_certificates"', '"inline_bytes"', '"inline_string":"-----']) assert.ok(!text.includes(word), `the bootstrap names TLS material itself (${word})`);

  const byPath = new Map(rest.map((f) => [join(outDir, f.name), f]));
  const secrets: Record<string, Obj> = {};
  const used = new Set<string>();
  const refs = sdsRefs(bootstrap);
  assert.ok(refs.length >= 2, 'a certificate and a CA through SDS');
  for (const { at, kind, config: c } of refs) {
    assert.deepEqual(Object.keys(c).sort(), ['name', 'sds_config'], at);
    const source = c.sds_config;
    assert.equal(source.resource_api_version, 'V3', at);
    const path: string = source.path_config_source.path;
    assert.equal(source.path_config_source.watched_directory.path, outDir, `${at}: the SDS file is re-read on a swap in ${outDir}`);
    const file = byPath.get(path);
    assert.ok(file, `${at}: ${path} is not a rendered file`);
    assert.equal(file.mode, 0o400, path);
    assert.ok(!/inline_|-----BEGIN/.test(file.content), `${path}: paths only, never material`);
    assert.equal(dirname(path), outDir);
    const res = v.validateSds(v.parseText(file.content, path), { name: c.name, kind, canonical: true });
    assert.deepEqual(res.errors, [], `${path}:\n${file.content}`);
    assert.deepEqual(res.warnings, [], path);
    assert.ok(!Object.hasOwn(secrets, c.name) || secrets[c.name]!.path === path, `${at}: two SDS files for the secret ${c.name}`);
    const secret = (v.parseText(file.content, path) as Obj).resources[0];
    secrets[c.name] = { ...secret, path };
    used.add(path);
  }
  assert.deepEqual([...byPath.keys()].filter((p) => p.includes('envoy-sds-') && !used.has(p)), [], 'every SDS file is used');
  return secrets;
}
