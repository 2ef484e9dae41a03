// The documentation holds together: the README stays a first page (at most 200 lines, the rest in
// docs/), and every relative link of README.md, CONTRIBUTING.md and docs/*.md reaches a file that
// exists and, for a #anchor, a heading of that file, by GitHub's rules for heading anchors.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'

const root = join(__dirname, '..', '..')
const pages = [
  'README.md',
  'CONTRIBUTING.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]

const read = (file: string) => readFileSync(join(root, file), 'utf8')

// Fenced code blocks hold `#` comments and `[`…`](`…`)` that are neither headings nor links.
const withoutFences = (text: string) => text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')

/** GitHub's anchor of a heading: lowercase, punctuation but hyphens dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link counts by its text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-')
}

/** The anchors of a page's headings; a repeated one gets -1, -2 … as on GitHub. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  for (const [, text] of withoutFences(read(file)).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = slug(text as string)
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n === 0 ? base : `${base}-${n}`)
  }
  return out
}

/** Relative links of a page, outside code: `[text](target)` and images. */
function links(file: string): string[] {
  const prose = withoutFences(read(file)).replace(/`[^`]*`/g, '')
  return [...prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
    .map((m) => m[1] as string)
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target)) // http:, https:, mailto: …
}

/** What is wrong with one link of a page, or undefined. */
function brokenLink(file: string, target: string): string | undefined {
  const [path, anchor] = target.split('#', 2) as [string, string | undefined]
  const resolved = path === '' ? file : relative(root, join(root, dirname(file), decodeURI(path)))
  if (!existsSync(join(root, resolved))) return `${file}: ${target}: no file ${resolved}`
  if (anchor === undefined) return undefined
  if (statSync(join(root, resolved)).isDirectory() || !resolved.endsWith('.md')) {
    return `${file}: ${target}: an anchor into ${resolved}, which is no markdown file`
  }
  if (!anchors(resolved).has(decodeURIComponent(anchor))) return `${file}: ${target}: no heading #${anchor}`
  return undefined
}

describe('docs', () => {
  it('keeps the README to 200 lines at most', () => {
    expect(read('README.md').trimEnd().split('\n').length).toBeLessThanOrEqual(200)
  })

  it('finds the pages and their links', () => {
    expect(pages).toEqual(expect.arrayContaining(['docs/configuration.md', 'docs/behaviour.md']))
    expect(links('README.md').length).toBeGreaterThan(10)
  })

  it.each(pages)('%s: every relative link reaches a file and, with an anchor, a heading of it', (file) => {
    const broken = links(file)
      .map((target) => brokenLink(file, target))
      .filter((problem) => problem !== undefined)
    expect(broken).toEqual([])
  })

  it('makes anchors as GitHub does', () => {
    expect(slug('Try it (with `npm start` running, from the repository folder)')).toBe(
      'try-it-with-npm-start-running-from-the-repository-folder',
    )
    expect(slug("The fleet's cap")).toBe('the-fleets-cap')
    expect(slug('Chaos: the database stops answering')).toBe('chaos-the-database-stops-answering')
    expect(slug('Layers of `lib/`')).toBe('layers-of-lib')
    expect(slug('snake_case and **bold**')).toBe('snake_case-and-bold')
  })
})
