# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_callrec_seal_global_optspecs
    string join \n k/key= r/recipient= cipher= o/output-dir= tsa= tsa-ca= timestamp= remove-source 0/null j/jobs= json no-watermark preset= crf= watermark-font= h/help V/version
end

function __fish_callrec_seal_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_callrec_seal_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_callrec_seal_using_subcommand
    set -l cmd (__fish_callrec_seal_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -s k -l key -d 'Key directory [default: $CALLREC_KEYDIR, else $XDG_CONFIG_HOME/callrec/keys, else ~/.config/callrec/keys]' -r -F
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -s r -l recipient -d 'Also encrypt the text info to this age recipient (age1...); repeatable. The key directory\'s age-recipients.txt is always used too' -r
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -l cipher -d 'How to encode the text info' -r -f -a "age\t'age (X25519) encryption to the recipients: confidential (default)'
table\t'The document\'s byte substitution table: tamper-evident, NOT confidential'"
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -s o -l output-dir -d 'Write sealed files here instead of beside their inputs' -r -F
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -l tsa -d 'At the end of the run, time-stamp the key\'s chain head with this RFC 3161 TSA (one round trip per run, at most 10 s); repeatable, each TSA gives its own anchor [env: CALLREC_TSA, URLs separated by spaces]' -r
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -l tsa-ca -d 'Trusted TSA certificates (PEM); repeatable [env: CALLREC_TSA_CA]. A token that does not chain to one is refused, so whoever else answers at a TSA\'s address cannot anchor' -r -F
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -l timestamp -d 'When to time-stamp with --tsa: once per run, or after each record sealed (one round trip each, for high-value calls)' -r -f -a "run\t'Once, at the end of the run, over the head after it (default)'
each\t'After each record sealed, over the head that record made'"
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -s j -l jobs -d 'Seal this many files at once [default: number of CPUs]' -r
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -l preset -d 'libx264 preset for watermarked video' -r -f -a "ultrafast\t''
superfast\t''
veryfast\t''
faster\t''
fast\t''
medium\t''
slow\t''
slower\t''
veryslow\t''
placebo\t''"
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -l crf -d 'libx264 constant rate factor for watermarked video (lower is better quality)' -r
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -l watermark-font -d 'TrueType font for the watermark' -r -F
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -l remove-source -d 'Remove each input (media and sidecar) once its sealed file has passed a full verification'
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -s 0 -l null -d 'Read and write path lists NUL-separated instead of one per line'
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -l json -d 'Print one JSON object per line (JSON Lines) instead of paths'
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -l no-watermark -d 'Seal video as it is, without the visible watermark (the manifest says so)'
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -s V -l version -d 'Print version'
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -a "keygen" -d 'Create a key directory: signing key, public key, age identity and recipients, substitution table'
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -a "anchor" -d 'Time-stamp the key\'s chain head now with the TSAs (if it is not anchored yet)'
complete -c callrec-seal -n "__fish_callrec_seal_needs_command" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c callrec-seal -n "__fish_callrec_seal_using_subcommand keygen" -s o -l output -d 'The key directory to create (created 0700 if missing; existing keys are never overwritten)' -r -F
complete -c callrec-seal -n "__fish_callrec_seal_using_subcommand keygen" -s h -l help -d 'Print help'
complete -c callrec-seal -n "__fish_callrec_seal_using_subcommand anchor" -s k -l key -d 'Key directory [default: $CALLREC_KEYDIR, else $XDG_CONFIG_HOME/callrec/keys, else ~/.config/callrec/keys]' -r -F
complete -c callrec-seal -n "__fish_callrec_seal_using_subcommand anchor" -l tsa -d 'The RFC 3161 TSA to ask; repeatable [env: CALLREC_TSA, URLs separated by spaces]' -r
complete -c callrec-seal -n "__fish_callrec_seal_using_subcommand anchor" -l tsa-ca -d 'Trusted TSA certificates (PEM); repeatable [env: CALLREC_TSA_CA]' -r -F
complete -c callrec-seal -n "__fish_callrec_seal_using_subcommand anchor" -s o -l output-dir -d 'Write the anchor files here' -r -F
complete -c callrec-seal -n "__fish_callrec_seal_using_subcommand anchor" -l again -d 'Anchor the head even if it is anchored already (to add another TSA\'s witness)'
complete -c callrec-seal -n "__fish_callrec_seal_using_subcommand anchor" -l json -d 'Print one JSON object per line (JSON Lines) instead of paths'
complete -c callrec-seal -n "__fish_callrec_seal_using_subcommand anchor" -s h -l help -d 'Print help'
complete -c callrec-seal -n "__fish_callrec_seal_using_subcommand help; and not __fish_seen_subcommand_from keygen anchor help" -f -a "keygen" -d 'Create a key directory: signing key, public key, age identity and recipients, substitution table'
complete -c callrec-seal -n "__fish_callrec_seal_using_subcommand help; and not __fish_seen_subcommand_from keygen anchor help" -f -a "anchor" -d 'Time-stamp the key\'s chain head now with the TSAs (if it is not anchored yet)'
complete -c callrec-seal -n "__fish_callrec_seal_using_subcommand help; and not __fish_seen_subcommand_from keygen anchor help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
