// PowerShell over SSH against a real sshd (in progress).
