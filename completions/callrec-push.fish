complete -c callrec-push -l to -d 'The archive: a directory, file://PATH, or s3://BUCKET/PREFIX' -r
complete -c callrec-push -l endpoint -d 'S3 endpoint URL [default: $AWS_ENDPOINT_URL]' -r
complete -c callrec-push -s p -l pubkey -d 'Fully verify each record against this trusted public key (seal.pub or a key directory) before pushing it; repeatable. Without it only the document\'s quick checks guard the push' -r -F
complete -c callrec-push -l verify -d 'How much of each object to read back after upload' -r -f -a "seal\t'Read back the object\'s size, manifest, signature and footer (ranged read)'
full\t'Read back the whole object and compare its SHA-256'"
complete -c callrec-push -l journal -d 'Journal of receipts (JSON Lines)' -r -F
complete -c callrec-push -l retain-days -d 'Lock each object (S3 Object Lock) for N days from now' -r
complete -c callrec-push -l retain-until -d 'Lock each object until DATE (YYYY-MM-DD, midnight UTC, or RFC 3339)' -r
complete -c callrec-push -l lock-mode -d 'Object Lock mode for --retain-days and --retain-until' -r -f -a "compliance\t'Nobody, not even the bucket\'s owner, can delete the object or shorten its retention'
governance\t'Users with a special permission can lift the lock'"
complete -c callrec-push -s j -l jobs -d 'Upload this many records at once (as many more are checked and read back meanwhile)' -r
complete -c callrec-push -l remove-source -d 'Remove each input once archived and verified, instead of moving it to SPOOL/sent/'
complete -c callrec-push -l legal-hold -d 'Place a legal hold on each object'
complete -c callrec-push -l require-retention -d 'Fail a record whose Object Lock the archive did not keep (by default: a warning)'
complete -c callrec-push -s 0 -l null -d 'Read and write path lists NUL-separated instead of one per line'
complete -c callrec-push -l json -d 'Print one receipt per line as JSON (JSON Lines) instead of keys'
complete -c callrec-push -s h -l help -d 'Print help (see more with \'--help\')'
complete -c callrec-push -s V -l version -d 'Print version'
