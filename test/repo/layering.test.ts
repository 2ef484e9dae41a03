// Imports point down the layers of lib/ only (CONTRIBUTING.md draws the order): a module may import
// from its own layer or one below, never from one above, so each layer can be read, tested and
// replaced without those built on it. Type-only imports count too: they couple as much.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

const LIB = resolve(__dirname, '../../lib')

// Bottom first. A file is in the first layer whose pattern matches its path under lib/.
const LAYERS: [name: string, pattern: RegExp][] = [
  ['base', /^(errors|sqlstate|zod)\.ts$/],
  ['tenancy', /^tenancy\/tenant-id\.ts$/],
  ['types', /^types\.ts$/],
  ['aws', /^aws\//],
  ['credentials', /^credentials\//],
  ['config', /^(config\/|pool\/tls\.ts$)/],
  ['pool', /^pool\//],
  ['adapters', /^adapters\//],
  ['registry', /^registry\//],
  ['placement', /^placement\//],
  ['middy', /^middy\//],
  ['entry', /^index\.ts$/],
]

const layerOf = (file: string): number => {
  const at = LAYERS.findIndex(([, pattern]) => pattern.test(file))
  if (at < 0) throw new Error(`lib/${file} is in no layer: add it to LAYERS (and CONTRIBUTING.md)`)
  return at
}

const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  )

// Every relative module specifier of a file: import/export … from, and import() with a literal.
const importsOf = (source: string): string[] =>
  [...source.matchAll(/(?:from\s+|import\s*\(\s*)'(\.[^']+)'/g)].map((m) => m[1] as string)

const upward = (): string[] => {
  const found: string[] = []
  for (const path of sources(LIB)) {
    const file = relative(LIB, path)
    for (const spec of importsOf(readFileSync(path, 'utf8'))) {
      const target = resolve(dirname(path), spec)
      const isFolder = existsSync(target) && statSync(target).isDirectory()
      const to = relative(
        LIB,
        isFolder ? join(target, 'index.ts') : target.endsWith('.ts') ? target : `${target}.ts`,
      )
      // Outside lib/ (the migrations): not a layer of the library's.
      if (to.startsWith('..')) continue
      if (layerOf(to) > layerOf(file)) {
        found.push(`${file} (${LAYERS[layerOf(file)]?.[0]}) imports ${to} (${LAYERS[layerOf(to)]?.[0]})`)
      }
    }
  }
  return found
}

describe('Layering of lib/', () => {
  it('has every module in a layer', () => {
    for (const path of sources(LIB)) expect(() => layerOf(relative(LIB, path))).not.toThrow()
  })

  it('has no import from a layer above', () => {
    expect(upward()).toEqual([])
  })

  it('finds an upward import (the check itself works)', () => {
    expect(importsOf("import type { X } from '../registry/tenant-pools'\nconst m = import('./y')")).toEqual([
      '../registry/tenant-pools',
      './y',
    ])
    expect(layerOf('registry/tenant-pools.ts')).toBeGreaterThan(layerOf('pool/login-pool.ts'))
  })
})
