"""What the tests share: fake processes, event readers, a pty console driver."""
