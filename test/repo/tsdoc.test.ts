// Every public export of the package's entries (tenant-pools, tenant-pools/middy,
// tenant-pools/pg-pool) carries TSDoc with an `@example`, where it is declared (STYLE.md: as
// Powertools does), and so does every public method of an exported class. An export tagged
// `@internal` (there for the library's own modules, not for users) needs no example.
import { join, relative, resolve } from 'node:path'
import ts from 'typescript'

const ROOT = resolve(__dirname, '../..')
const ENTRIES = ['lib/index.ts', 'lib/middy/index.ts', 'lib/adapters/pg-pool.ts']

const program = (): ts.Program => {
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile)
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT)
  return ts.createProgram(
    ENTRIES.map((e) => join(ROOT, e)),
    { ...options, noEmit: true },
  )
}

const tagged = (symbol: ts.Symbol, checker: ts.TypeChecker, name: string): boolean =>
  symbol.getJsDocTags(checker).some((t) => t.name === name) ||
  (symbol.declarations ?? []).some((d) => ts.getJSDocTags(d).some((t) => t.tagName.text === name))

// A class's own public methods and accessors: not inherited, not private (`#x` or `private`), not
// the constructor.
const publicMembers = (symbol: ts.Symbol): ts.Symbol[] =>
  [...(symbol.members?.values() ?? [])].filter((m) => {
    const decl = m.declarations?.[0]
    if (!decl || !(m.flags & (ts.SymbolFlags.Method | ts.SymbolFlags.GetAccessor))) return false
    const name = ts.getNameOfDeclaration(decl)
    if (name && ts.isPrivateIdentifier(name)) return false
    const flags = ts.getCombinedModifierFlags(decl)
    return !(flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected))
  })

/**
 * `name (file)` of every public export (and public method of an exported class) with no `@example`,
 * once however many entries export it.
 */
const missingExamples = (): string[] => {
  const p = program()
  const checker = p.getTypeChecker()
  const seen = new Set<ts.Symbol>()
  const missing: string[] = []
  const where = (symbol: ts.Symbol) => {
    const file = symbol.declarations?.[0]?.getSourceFile().fileName
    return file ? relative(ROOT, file) : '?'
  }
  for (const entry of ENTRIES) {
    const file = p.getSourceFile(join(ROOT, entry))
    const module = file && checker.getSymbolAtLocation(file)
    if (!module) throw new Error(`${entry}: no module symbol`)
    for (const exported of checker.getExportsOfModule(module)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported
      if (seen.has(symbol) || tagged(symbol, checker, 'internal')) continue
      seen.add(symbol)
      if (!tagged(symbol, checker, 'example')) missing.push(`${exported.name} (${where(symbol)})`)
      if (!(symbol.flags & ts.SymbolFlags.Class)) continue
      for (const member of publicMembers(symbol)) {
        if (tagged(member, checker, 'internal')) continue
        if (!tagged(member, checker, 'example')) {
          missing.push(`${exported.name}.${member.name} (${where(symbol)})`)
        }
      }
    }
  }
  return missing
}

describe('TSDoc of the public API', () => {
  it('gives every export of the package entries, and every public method of their classes, an @example', () => {
    // Act
    const missing = missingExamples()

    // Assess
    expect(missing).toEqual([])
  })
})
