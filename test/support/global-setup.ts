/** Runs once before the suite: nothing to prepare yet beyond what each test file makes itself. */
export default function setup(): void {}
