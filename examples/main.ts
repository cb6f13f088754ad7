interface Point {
  x: number;
  y: number;
}

const norm = (p: Point): number => Math.hypot(p.x, p.y);

console.log(`|(3, 4)| = ${norm({ x: 3, y: 4 })} (Node ${process.version})`);
