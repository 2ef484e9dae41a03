// The option table of docs/configuration.md against lib's own tables: every default it documents is the one
// `defaults` holds, every environment variable it names is the one optionsFromEnv reads, and no
// option of either table is missing from the other.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { defaults, environmentVariables, optionsFromEnv } from '../../lib'

interface Row {
  option: string
  fallback: string
  variable: string
}

// The rows of the table headed `| option | default | environment variable | meaning |`.
function documentedOptions(): Row[] {
  const page = readFileSync(join(__dirname, '..', '..', 'docs', 'configuration.md'), 'utf8')
  const lines = page.split('\n')
  const start = lines.findIndex((l) => /^\|\s*option\s*\|\s*default\s*\|\s*environment variable\s*\|/.test(l))
  expect(start).toBeGreaterThan(-1)
  const rows: Row[] = []
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break
    const [option, fallback, variable] = line
      .split('|')
      .slice(1, 4)
      .map((c) => c.trim())
    rows.push({ option: option as string, fallback: fallback as string, variable: variable as string })
  }
  return rows
}

const code = (cell: string) => /^`([^`]+)`/.exec(cell)?.[1]

describe('docs/configuration.md: Options', () => {
  const rows = documentedOptions()
  const byOption = new Map(rows.map((r) => [code(r.option), r]))

  it('documents every option that has a default or an environment variable', () => {
    const documented = new Set(byOption.keys())
    const missing = [...new Set([...Object.keys(defaults), ...Object.keys(environmentVariables)])].filter(
      // schemaPrefix is documented as schemaFor's default ('tenant_' + id)
      (o) => o !== 'schemaPrefix' && !documented.has(o),
    )
    expect(missing).toEqual([])
  })

  it.each(Object.entries(defaults).filter(([o]) => o !== 'schemaPrefix'))(
    'gives %s the default lib has (%p)',
    (option, value) => {
      const cell = byOption.get(option)?.fallback ?? ''
      expect(code(cell)).toBe(String(value))
    },
  )

  it.each(Object.entries(environmentVariables))(
    'names %s’s variable as optionsFromEnv reads it',
    (option, [name, type]) => {
      expect(byOption.get(option)?.variable).toContain(`\`${name}\``)
      // And the variable really sets the option.
      const sample =
        type === 'number' ? '7' : type === 'boolean' ? 'true' : option === 'ssl' ? 'require' : 'x'
      const read = optionsFromEnv({ [name]: sample }) as Record<string, unknown>
      expect(read[option]).toBe(type === 'number' ? 7 : type === 'boolean' ? true : sample)
    },
  )

  it('documents the prefix variable and the clusters variable, which have no row of their own in lib', () => {
    expect(byOption.get('schemaFor')?.variable).toContain('`TENANT_POOLS_SCHEMA_PREFIX`')
    expect(optionsFromEnv({ TENANT_POOLS_SCHEMA_PREFIX: 'org_' }).schemaFor?.('acme')).toBe('org_acme')
    expect(byOption.get('clusters')?.variable).toContain('`TENANT_POOLS_CLUSTERS`')
  })
})
