/** True for addresses only this machine can reach (`localhost`, `127.x.x.x`, `::1`). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
