complete -c callrec-verify -s p -l pubkey -d 'A trusted public key (seal.pub, or a key directory); repeatable [env: CALLREC_PUBKEY]' -r -F
complete -c callrec-verify -l tsa-ca -d 'Trusted TSA certificates (PEM: a TSA\'s root or its own certificate); repeatable [env: CALLREC_TSA_CA]. Without one, anchors are checked in every other way but give no trusted time' -r -F
complete -c callrec-verify -l bundle -d 'Verify every FILE as one set, then write the court bundle into OUTDIR (new or empty): the evidence, the keys, SHA256SUMS, verify.sh (checks it all without callrec) and report.html (a printable chain-of-custody report). Refused unless everything verifies' -r -F
complete -c callrec-verify -s i -l identity -d 'The key that reads the text info: an age identity file, a substitution table, or a key directory' -r -F
complete -c callrec-verify -s o -l output -d 'Where --extract-media, --extract-audio or --extract-video write (\'-\' for stdout, for --extract-media, if it is not a terminal)' -r -F
complete -c callrec-verify -l vocabulary -d 'Vocabulary file for --show\'s figure 3C line [default: as callrec-annotate: $CALLREC_VOCABULARY, else ~/.config/callrec/vocabulary.json]' -r -F
complete -c callrec-verify -l quick -d 'Run only the document\'s quick checks (no key needed; reads O(1) bytes of media)'
complete -c callrec-verify -l explain -d 'Print the shell commands that verify FILE by hand with coreutils, minisign and age'
complete -c callrec-verify -l extract-media -d 'Write the media of FILE alone to --output (after verifying it)'
complete -c callrec-verify -l extract-audio -d 'Write the audio of FILE alone to --output, as a playable file (no re-encoding; the container follows the name: .mka, .opus, .ogg, .mkv)'
complete -c callrec-verify -l extract-video -d 'Write the video of FILE alone to --output, as a playable file (no re-encoding; the container follows the name: .mkv, .mp4)'
complete -c callrec-verify -l show -d 'Decrypt and print the text info of FILE as JSON and as the document\'s line'
complete -c callrec-verify -s 0 -l null -d 'Read and write path lists NUL-separated instead of one per line'
complete -c callrec-verify -l json -d 'Print one JSON object per line (JSON Lines): a verdict per file, chain issues, a summary'
complete -c callrec-verify -s h -l help -d 'Print help (see more with \'--help\')'
complete -c callrec-verify -s V -l version -d 'Print version'
