// PowerShell over SSH: the libssh channel (in progress).
