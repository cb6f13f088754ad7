// Starter examples of the playground, one per language.

export interface Language {
  id: string;
  name: string;
  /** file is the name under which the playground's code runs in the workspace. */
  file: string;
  example: string;
}

export const languages: Language[] = [
  {
    id: "python",
    name: "Python",
    file: "main.py",
    example: `# Python: read a line of standard input, then do a little work.
import sys, math

name = sys.stdin.readline().strip() or "world"
print(f"Hello, {name}!")

primes = [n for n in range(2, 60) if all(n % d for d in range(2, math.isqrt(n) + 1))]
print("primes below 60:", primes)
`,
  },
  {
    id: "javascript",
    name: "JavaScript",
    file: "main.js",
    example: `// JavaScript (Node.js): read standard input, then do a little work.
const input = require("fs").readFileSync(0, "utf8").trim();
console.log(\`Hello, \${input || "world"}!\`);

const fib = (n) => (n < 2 ? n : fib(n - 1) + fib(n - 2));
console.log("fib(1..15):", Array.from({ length: 15 }, (_, i) => fib(i + 1)).join(" "));
`,
  },
  {
    id: "typescript",
    name: "TypeScript",
    file: "main.ts",
    example: `// TypeScript: the types are stripped to run, not checked (a type error runs anyway).
interface Point { x: number; y: number }

const dist = (a: Point, b: Point): number => Math.hypot(a.x - b.x, a.y - b.y);
const points: Point[] = [{ x: 0, y: 0 }, { x: 3, y: 4 }, { x: 6, y: 8 }];
console.log("distances:", points.slice(1).map((p) => dist(points[0], p)));
`,
  },
  {
    id: "bash",
    name: "Bash",
    file: "main.sh",
    example: `# Bash: a shell in the sandbox's workspace.
read -r name || true
echo "Hello, \${name:-world}!"
uname -sr
ls -la
`,
  },
];

export function languageName(id: string): string {
  return languages.find((l) => l.id === id)?.name ?? id;
}

export function example(id: string): string {
  return languages.find((l) => l.id === id)?.example ?? "";
}
